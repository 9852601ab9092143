"""Devices and backends, and whether the hardware runs bf16 natively."""

from ..errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "torch", "onnx")


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


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"Unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    return backend


def cpu_bf16_kind() -> str:
    """"amx", "avx512_bf16" or "emulated": how this CPU runs bf16 in torch."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for name, kind in (("_is_amx_tile_supported", "amx"), ("_is_avx512_bf16_supported", "avx512_bf16")):
        probe = getattr(cpu, name, None)  # private helpers: older torch lacks them
        try:
            if probe is not None and probe():
                return kind
        except Exception:  # noqa: BLE001 - a failing probe means no native support
            pass
    return "emulated"


def native_bf16(device: str) -> bool:
    """True when ``device`` ("cpu" or "cuda") runs bf16 in hardware (AMX / AVX512-BF16; CUDA bf16)."""
    if device == "cpu":
        return cpu_bf16_kind() != "emulated"
    if device == "cuda":
        import torch

        try:
            return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        except Exception:  # noqa: BLE001
            return False
    return False


def bf16_hardware(device: str) -> str:
    """How ``device`` runs bf16, in words: the CPU's :func:`cpu_bf16_kind`, or (no) native bf16."""
    if device == "cpu":
        return cpu_bf16_kind()
    return "native bf16" if native_bf16(device) else "no native bf16"
