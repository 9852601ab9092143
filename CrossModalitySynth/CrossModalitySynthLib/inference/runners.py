"""Run a 2D network on a batch of slices: torch (eager or an optimised CPU forward) or ONNX Runtime.

A runner maps a float32 array (N, C_in, H, W) to a float32 array (N, C_out, H, W).

Paths (``runner.path`` names the one in use):

- ``eager-fp32`` / ``eager-bf16-autocast``: the network's own ``forward`` under
  ``torch.inference_mode`` (bf16 through ``torch.autocast``). The reference path, and the path for
  every network other than the ResNet generator and for CUDA.
- ``optimised-fp32`` / ``optimised-bf16``: the ResNet generator on the CPU through
  :class:`.fast_resnet.FastResnetGenerator` (fp32: Winograd, same arithmetic as eager up to float
  rounding, about 0.1 HU; bf16: oneDNN/AMX convolutions with float32 statistics, residual stream,
  first and last layer). The bf16 path's accuracy depends on the weights: a trained demo generator
  stays well inside the engine's bf16 quality gate, a paper-size generator with random weights is
  far outside it. The engine uses it by default only for bundles that record a passing gate
  measurement (see :mod:`.precision`).

On the CPU, with several torch threads, a batch runs as pieces of whole slices on worker threads
(:mod:`.slice_workers`), on every torch path.

``CMSYNTH_TORCH_OPTIMIZE=0`` in the environment (or ``optimize=False``) forces the eager path.
"""

import os
from typing import Optional

import numpy as np

from ..errors import ConfigError, InputError
from .fast_resnet import FastResnetGenerator
from .slice_workers import SliceWorkers, split_even

#: Environment switch for the optimised CPU forward ("0" turns it off).
OPTIMIZE_ENV = "CMSYNTH_TORCH_OPTIMIZE"


def optimisation_enabled(optimize: Optional[bool] = None) -> bool:
    if optimize is not None:
        return bool(optimize)
    return os.environ.get(OPTIMIZE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class TorchRunner:
    """torch runner: the eager network, or an optimised forward for the ResNet generator on CPU.

    Args:
        net: the network (any ``nn.Module`` taking (N, C, H, W)).
        device: "cpu" or "cuda".
        precision: "fp32" or "bf16".
        threads: torch intra-op threads (None keeps the library default).
        optimize: None = on unless ``CMSYNTH_TORCH_OPTIMIZE=0``; False = always eager.
    """

    def __init__(self, net, device: str, precision: str, threads: Optional[int] = None,
                 optimize: Optional[bool] = None) -> None:
        import torch

        self.torch = torch
        if threads:
            torch.set_num_threads(int(threads))
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.precision = precision
        self.fast = None
        self.workers = SliceWorkers()
        if optimisation_enabled(optimize) and self.device.type == "cpu":
            self.fast = FastResnetGenerator.maybe(self.net, precision)
        if self.fast is not None:
            self.path = "optimised-" + precision
        else:
            self.path = "eager-fp32" if precision == "fp32" else "eager-bf16-autocast"

    #: Slices per slice worker in one call on the CPU (eager U-Net: measured faster than 1 or 8).
    slices_per_worker = 4

    def preferred_batch(self) -> Optional[int]:
        """Slices per call that keep every slice worker busy (CPU); None on CUDA (memory decides)."""
        if self.device.type != "cpu":
            return None
        return self.slices_per_worker * self.workers.count()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        workers = self.workers.count(x.shape[0]) if self.device.type == "cpu" else 1
        with torch.inference_mode():
            if self.fast is not None and self.fast.supports(x):
                y = self.fast(x)
            elif workers > 1:  # eager on the CPU: the batch in one piece per slice worker
                parts = split_even(int(x.shape[0]), workers)
                y = torch.cat(self.workers.map(lambda s: self._eager(x[s]), parts, workers))
            else:
                y = self._eager(x)
        return y.float().cpu().numpy()

    def _eager(self, x):
        if self.precision == "bf16":  # autocast is per thread: entered by whichever thread runs this
            with self.torch.autocast(device_type=self.device.type, dtype=self.torch.bfloat16):
                return self.net(x)
        return self.net(x)


# --------------------------------------------------------------------------------------------
# ONNX Runtime
# --------------------------------------------------------------------------------------------

class OnnxRunner:
    """ONNX Runtime (fp32). ``threads`` sets intra-op threads; the graph is fully optimised."""

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
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = int(threads)
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError("onnxruntime here has no CUDA support; use --backend torch or --device cpu.")
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(onnx_path, sess_options=opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.path = "onnxruntime-fp32"

    def preferred_batch(self) -> Optional[int]:
        """None: ONNX Runtime takes the memory-budget batch."""
        return None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        (y,) = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(y, dtype=np.float32)
