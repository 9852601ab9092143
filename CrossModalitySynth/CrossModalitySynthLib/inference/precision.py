"""The precision a run uses ("auto", "fp32", "bf16") and the bf16 quality gate records it reads.

bf16 passes the gate when, on phantom cases, the mean |sCT(bf16) - sCT(fp32)| stays under 1 HU and
its 99th percentile under 5 HU (inside the body, HU after restore). The gate is measured per
bundle (:func:`.measure_gate.measure_bf16_gate`) and recorded in it at
``spec["metrics"]["bf16_gate"]``: one record, or a dict of records keyed by device type ("cpu",
"cuda").

``precision="auto"`` (:func:`resolve_precision`) runs bf16 only when all of these hold, else fp32:

1. the backend is torch (ONNX Runtime runs fp32 only);
2. the bundle is MR->CT (the gate is in HU);
3. the bundle has a record measured on the same device type (a "cpu" record counts for the CPU
   only; a CUDA run needs a "cuda" record) with ``passed`` true and numbers inside the limits;
4. the device has native bf16 (AMX or AVX512-BF16 on the CPU, ``torch.cuda.is_bf16_supported()``);
5. (checked by the engine once its runner is built) the bf16 runner path is the one the record was
   measured with (:func:`confirm_runner`).

The choice comes with a short reason, which the engine exposes and ``cmsynth`` writes into its
summary. "fp32" and "bf16" given explicitly are used as asked.
"""

from typing import Any, Dict, NamedTuple, Optional

import numpy as np
import SimpleITK as sitk

from ..errors import ConfigError
from ..registry.spec import Direction
from .device import bf16_hardware, native_bf16

#: The gate: mean and 99th percentile of |HU difference| inside the body.
GATE_MEAN_HU = 1.0
GATE_P99_HU = 5.0
#: Tolerance for an optimised fp32 path against the eager fp32 reference (max |HU difference|).
FP32_PATH_MAX_HU = 1.0
#: Only these bundles are gated (and can run bf16 under ``auto``): their output is in HU.
GATED_DIRECTION = Direction.MR_TO_CT
PRECISIONS = ("auto", "fp32", "bf16")


def check_precision(precision: str) -> str:
    """"auto", "fp32" or "bf16" (auto is resolved per bundle by :func:`resolve_precision`)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
    return precision


class PrecisionChoice(NamedTuple):
    """The precision a run uses and why (a short sentence for summaries and logs)."""

    precision: str
    reason: str


def as_float_array(image) -> np.ndarray:
    """A SimpleITK image or an array as a float64 array."""
    if isinstance(image, sitk.Image):
        return sitk.GetArrayFromImage(image).astype(np.float64)
    return np.asarray(image, dtype=np.float64)


def gate_statistics(test, reference, mask=None) -> Dict[str, float]:
    """|test - reference| statistics in HU (images or arrays of the same shape).

    Args:
        test, reference: sCT volumes in HU (SimpleITK images or arrays), same grid.
        mask: optional body mask (non-zero inside); None = every voxel.

    Returns:
        {"mean_hu", "p99_hu", "max_hu", "voxels"}.
    """
    a, b = as_float_array(test), as_float_array(reference)
    if a.shape != b.shape:
        raise ValueError(f"gate_statistics: shapes differ, {a.shape} vs {b.shape}.")
    diff = np.abs(a - b)
    if mask is not None:
        m = as_float_array(mask) != 0
        if m.shape != diff.shape:
            raise ValueError(f"gate_statistics: mask shape {m.shape} differs from the images' {diff.shape}.")
        diff = diff[m]
    else:
        diff = diff.ravel()
    if diff.size == 0:
        raise ValueError("gate_statistics: the mask is empty.")
    return {
        "mean_hu": float(diff.mean()),
        "p99_hu": float(np.percentile(diff, 99)),
        "max_hu": float(diff.max()),
        "voxels": int(diff.size),
    }


def passes_gate(stats: Dict[str, float], mean_hu: Optional[float] = None, p99_hu: Optional[float] = None) -> bool:
    """True when ``stats`` (from :func:`gate_statistics`) are inside the bf16 quality gate."""
    mean_hu = GATE_MEAN_HU if mean_hu is None else mean_hu
    p99_hu = GATE_P99_HU if p99_hu is None else p99_hu
    return bool(stats["mean_hu"] < mean_hu and stats["p99_hu"] < p99_hu)


# ----------------------------------------------------------------------------- records


def bundle_gate(spec: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The bf16 gate recorded in a bundle spec (``spec["metrics"]["bf16_gate"]``), or None."""
    metrics = spec.get("metrics") if isinstance(spec, dict) else None
    record = metrics.get("bf16_gate") if isinstance(metrics, dict) else None
    return record if isinstance(record, dict) else None


def gate_record(spec: Dict[str, Any], device: str) -> Optional[Dict[str, Any]]:
    """The bundle's gate record measured on ``device`` ("cpu" or "cuda"), or None.

    The stored value is one record (its ``device`` must equal ``device``) or a dict of records
    keyed by device type.
    """
    stored = bundle_gate(spec)
    if stored is None:
        return None
    if "device" in stored:
        return stored if stored["device"] == device else None
    record = stored.get(device)
    if isinstance(record, dict) and record.get("device", device) == device:
        return record
    return None


def merge_gate(stored: Optional[Dict[str, Any]], record: Dict[str, Any]) -> Dict[str, Any]:
    """``stored`` (a bundle's current gate value) with ``record`` replacing its device's entry.

    One device: the record itself; several: a dict keyed by device type.
    """
    if not stored:
        return record
    by_device = {stored["device"]: stored} if "device" in stored else dict(stored)
    by_device[record["device"]] = record
    return record if list(by_device) == [record["device"]] else by_device


def record_passes(record: Optional[Dict[str, Any]]) -> bool:
    """True when a record says ``passed`` and its numbers lie inside today's limits."""
    try:
        return record is not None and record.get("passed") is True and passes_gate(record)
    except (KeyError, TypeError):
        return False


def _numbers(record: Dict[str, Any]) -> str:
    try:
        return f"mean {float(record['mean_hu']):.2f} HU, p99 {float(record['p99_hu']):.2f} HU"
    except (KeyError, TypeError, ValueError):
        return "no numbers"


def resolve_precision(requested: str, device: str, spec: Dict[str, Any], backend: str = "torch") -> PrecisionChoice:
    """The precision a run uses: "fp32"/"bf16" as asked; "auto" by the rule in this module's docstring.

    Args:
        requested: "auto", "fp32" or "bf16".
        device: the resolved device, "cpu" or "cuda".
        spec: the bundle's spec.
        backend: "torch" or "onnx".
    """
    check_precision(requested)
    if requested != "auto":
        return PrecisionChoice(requested, f"{requested} requested")
    if backend != "torch":
        return PrecisionChoice("fp32", "auto: the ONNX backend runs fp32 only")
    direction = spec.get("direction")
    if direction != GATED_DIRECTION:
        return PrecisionChoice("fp32", "auto: the bf16 gate is measured in HU on MR->CT models only; "
                                       f"this is {direction}")
    record = gate_record(spec, device)
    if record is None:
        return PrecisionChoice("fp32", f"auto: the bundle has no bf16 gate measured on {device}")
    limits = f"limits {GATE_MEAN_HU:g} / {GATE_P99_HU:g} HU"
    if not record_passes(record):
        return PrecisionChoice("fp32",
                               f"auto: bf16 failed the bundle's gate on {device} ({_numbers(record)}; {limits})")
    if not native_bf16(device):
        return PrecisionChoice("fp32", f"auto: bf16 passed the bundle's gate but this {device} has no native bf16")
    return PrecisionChoice("bf16", f"auto: bf16 passed the bundle's gate on {device} ({_numbers(record)}; {limits}) "
                                   f"and the {device} has native bf16 ({bf16_hardware(device)})")


def confirm_runner(choice: PrecisionChoice, requested: str, device: str, spec: Dict[str, Any],
                   runner_path: str) -> PrecisionChoice:
    """An ``auto`` bf16 choice stands only when the runner is the one the gate was measured with.

    Returns ``choice`` unchanged, or fp32 with the reason when ``runner_path`` differs from the
    record's ``runner_path``.
    """
    if requested != "auto" or choice.precision != "bf16":
        return choice
    measured = (gate_record(spec, device) or {}).get("runner_path")
    if measured and measured != runner_path:
        return PrecisionChoice("fp32", f"auto: the bundle's bf16 gate was measured on the {measured} runner, "
                                       f"this run would use {runner_path}")
    return choice


__all__ = [
    "FP32_PATH_MAX_HU",
    "GATED_DIRECTION",
    "GATE_MEAN_HU",
    "GATE_P99_HU",
    "PRECISIONS",
    "PrecisionChoice",
    "as_float_array",
    "bundle_gate",
    "check_precision",
    "confirm_runner",
    "gate_record",
    "gate_statistics",
    "merge_gate",
    "passes_gate",
    "record_passes",
    "resolve_precision",
]
