"""Device and precision choice."""

from ..errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")  # auto: see inference/precision.py
BACKENDS = ("torch", "onnx")


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when a CUDA GPU is usable, else "cpu"; "cuda" without a GPU is an error."""
    import torch

    if device not in DEVICES:
        raise ConfigError(f"Unknown device {device!r}; use one of {', '.join(DEVICES)}.")
    has_cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if device == "cuda" and not has_cuda:
        raise ConfigError("--device cuda was asked for but no CUDA GPU is usable here; use --device cpu or auto.")
    return device


def check_precision(precision: str) -> str:
    """"auto", "fp32" or "bf16" (auto is resolved per bundle by :func:`.precision.resolve_precision`)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
    return precision


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"Unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    return backend
