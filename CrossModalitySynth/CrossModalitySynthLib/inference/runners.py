"""Run a 2D network on a batch of slices: torch (eager, fp32 or bf16 autocast) or ONNX Runtime.

A runner maps a float32 array (N, C_in, H, W) to a float32 array (N, C_out, H, W).
"""

import os
from typing import Optional

import numpy as np

from ..errors import ConfigError, InputError


class TorchRunner:
    def __init__(self, net, device: str, precision: str, threads: Optional[int] = None) -> None:
        import torch

        self.torch = torch
        if threads:
            torch.set_num_threads(int(threads))
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.precision = precision

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                    y = self.net(x)
            else:
                y = self.net(x)
        return y.float().cpu().numpy()


class OnnxRunner:
    def __init__(self, onnx_path: str, device: str, precision: str, threads: Optional[int] = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("The ONNX backend needs the onnxruntime package; install it or use --backend torch.") from None
        if precision != "fp32":
            raise ConfigError("The ONNX backend runs in fp32 only; use --precision fp32 or --backend torch.")
        if not os.path.isfile(onnx_path):
            raise InputError(f"This model bundle has no ONNX file ({onnx_path}); use --backend torch.")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError("onnxruntime here has no CUDA support; use --backend torch or --device cpu.")
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(onnx_path, sess_options=opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        (y,) = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(y, dtype=np.float32)
