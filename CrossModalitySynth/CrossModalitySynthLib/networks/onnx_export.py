"""Export a 2D image network (generator, U-Net) to ONNX with dynamic batch, H and W."""

import importlib.util
import os
import warnings
from typing import Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError

ONNX_INPUT_NAME = "image"
ONNX_OUTPUT_NAME = "output"


def dynamo_exporter_available() -> bool:
    """True when torch's torch.export-based ONNX exporter can run (it needs ``onnxscript``)."""
    return importlib.util.find_spec("onnxscript") is not None


def export_onnx(
    model: nn.Module,
    path: str,
    in_channels: int,
    example_hw: Tuple[int, int] = (64, 64),
    opset_version: Optional[int] = None,
    dynamo: Optional[bool] = None,
) -> str:
    """Write ``model`` to ``path`` as ONNX and return the path.

    The graph takes ``image`` of shape (N, in_channels, H, W) float32 and returns ``output``
    (N, C_out, H', W'); N, H and W are dynamic axes. ``example_hw`` is only the trace size
    (use a multiple of the model's input multiple). The model is exported in eval mode and
    its training flag is restored afterwards.

    ``dynamo=None`` picks the torch.export-based exporter when ``onnxscript`` is installed and
    otherwise the TorchScript-based (legacy) exporter, which torch 2.13 still ships
    (``dynamo=False``, deprecated). ``opset_version=None`` means 18 for the dynamo exporter
    (its lowest native opset) and 17 for the legacy one. The file is written to a temporary
    name and renamed, so a failed export leaves nothing behind.
    """
    if dynamo is None:
        dynamo = dynamo_exporter_available()
    if dynamo and not dynamo_exporter_available():
        raise ConfigError("ONNX export with dynamo=True needs the 'onnxscript' package: install it or use dynamo=False.")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    example = torch.randn(1, int(in_channels), int(example_hw[0]), int(example_hw[1]), device=device)
    was_training = model.training
    model.eval()
    tmp = "{}.tmp{}".format(path, os.getpid())
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # legacy exporter deprecation notice
            # Harmless notes of the legacy exporter: InstanceNorm without running stats always
            # uses the instance statistics (what we want), and a Slice that is not folded.
            warnings.filterwarnings("ignore", message=".*operator 'instance_norm' is set to train=True.*")
            warnings.filterwarnings("ignore", message=".*Constant folding - Only steps=1.*")
            # torch.nn's own argument checks (channel count, spatial size > 1) are traced as
            # constants; the dynamic-shape export is verified against ONNX Runtime in the tests.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.nn\.")
            kwargs = dict(
                input_names=[ONNX_INPUT_NAME],
                output_names=[ONNX_OUTPUT_NAME],
                opset_version=opset_version if opset_version is not None else (18 if dynamo else 17),
            )
            dyn_axes = {
                ONNX_INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                ONNX_OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"},
            }
            export_params = _export_parameters()
            if dynamo:
                kwargs["dynamo"] = True
                kwargs["verbose"] = False
                if "external_data" in export_params:
                    kwargs["external_data"] = False  # one self-contained file
                dim = getattr(getattr(torch.export, "Dim", None), "DYNAMIC", None)
                if dim is not None and "dynamic_shapes" in export_params:
                    kwargs["dynamic_shapes"] = ({0: dim, 2: dim, 3: dim},)
                else:
                    kwargs["dynamic_axes"] = dyn_axes
            else:
                if "dynamo" in export_params:
                    kwargs["dynamo"] = False
                kwargs["dynamic_axes"] = dyn_axes
            torch.onnx.export(model, (example,), tmp, **kwargs)
        os.replace(tmp, path)
    finally:
        model.train(was_training)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _export_parameters():
    import inspect

    try:
        return inspect.signature(torch.onnx.export).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return {}
