"""What a model was trained on, recorded at export, and the run-time check of an input against it.

At export (``cmsynth_training.export``) every training volume of the model's input modality goes
through :func:`~CrossModalitySynthLib.preprocess.prepare` with the bundle's own grid spec (the
exact preprocessing the engine runs) and :func:`volume_statistics` measures, on the model grid:

- the input spacing (in-plane: x and y; through-plane: z, in mm, after reorientation);
- the body size: the median left-right width and antero-posterior depth of the body in the axial
  slices whose body area is at least half the largest (mm); an MRI's body is found on the input
  before normalisation and put on the model grid (:func:`body_mask`);
- per input channel, the histogram of the normalised intensity inside the body
  (:data:`BINS` bins over [-1, 1]).

:func:`training_range` turns these into the bundle spec's optional ``training_range`` key::

    {"version": 1, "dataset": "phantom", "phantom_only": true, "n_volumes": 6,
     "spacing_mm": {"inplane": [lo, hi], "through_plane": [lo, hi]},
     "body_mm": {"width": [lo, hi], "depth": [lo, hi]},
     "channels": [{"name": "t1_in", "histogram": [...], "max_training_distance": d,
                   "threshold": t}, ...]}

:class:`CrossModalitySynthLib.registry.spec.BundleSpec` checks that key's form when a bundle is read.

At run time :func:`check_input` (called by the engine after ``prepare``, so the normalisation is
the one the network sees) compares an input with that record and returns warnings in words:

- spacing or body size outside the training range by more than :data:`MARGIN` (25 %) of it;
- a channel's body histogram farther from the training histogram than its ``threshold``. The
  distance is the Wasserstein-1 (earth mover's) distance between the two histograms in
  normalised units (the network input spans [-1, 1], 2 units): how far, on average, intensity
  must move to turn one distribution into the other. The threshold is
  :data:`DISTANCE_FACTOR` (2) times the largest leave-one-out distance of a training volume
  (each volume against the mean histogram of the others), and at least :data:`MIN_THRESHOLD`:
  held-out phantom cases lie within the training spread, a scan with a different contrast lies
  well beyond it (both are tested);
- a model trained only on digital phantom data (``training.data.dataset == "phantom"``) says so
  for every input that is not a phantom case. The rule: an input file is a phantom case when the
  folder holding it has the ``case.json`` that ``cmsynth phantom`` writes (``"format":
  "CrossModalitySynth phantom case"``) and the volume lies on one of the grids that file records
  (same size and spacing). Images given without their files are not known to be phantom cases.
"""

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..errors import InputError
from ..registry.spec import BundleSpec

VERSION = 1
#: histogram bins over the normalised range [-1, 1]
BINS = 40
#: a spacing or body size is outside the training range when beyond it by more than this fraction
MARGIN = 0.25
#: histogram threshold: this many times the largest leave-one-out distance of a training volume ...
DISTANCE_FACTOR = 2.0
#: ... and at least this (normalised units; 2.5 % of the [-1, 1] range)
MIN_THRESHOLD = 0.05
#: body: axial slices whose body area is at least this fraction of the largest
BODY_SLICE_FRACTION = 0.5
#: CT body: above -500 HU (as the metrics' body mask)
CT_BODY_HU = -500.0
PHANTOM_FORMAT = "CrossModalitySynth phantom case"


# ------------------------------------------------------------------------------ measuring


def body_mask(prepared, image=None) -> np.ndarray:
    """The body on the model grid, (Z, Y, X) bool. CT: above -500 HU. MRI: the engine's foreground
    mask (:func:`~CrossModalitySynthLib.preprocess.intensity.foreground_mask`) of channel 0, taken
    on ``image`` (the input image of channel 0, before normalisation) and put on the model grid
    like a label, when it is given; else on the normalised array, where the percentile clip can
    merge a dark tissue with the air (the fat of a fat-suppressed T2 falls below the 0.5th
    percentile and the body shrinks to its organs)."""
    from ..preprocess.intensity import ct_scale, foreground_mask

    a = prepared.array[0]
    if prepared.modality == "CT":
        level = float(ct_scale(prepared.spec.ct_window).forward(np.array([CT_BODY_HU]))[0])
        return a > level
    if image is None:
        return foreground_mask(a)
    import SimpleITK as sitk

    from ..preprocess import prepare_label

    mask = sitk.GetImageFromArray(foreground_mask(sitk.GetArrayFromImage(image)).astype(np.uint8))
    mask.CopyInformation(image)
    return prepare_label(mask, prepared, "nearest") > 0


def _extents_mm(mask: np.ndarray, spacing_xyz) -> Dict[str, Optional[float]]:
    """Median left-right width and antero-posterior depth (mm) of the body's large axial slices."""
    area = mask.reshape(mask.shape[0], -1).sum(axis=1)
    if area.max(initial=0) == 0:
        return {"width": None, "depth": None}
    widths, depths = [], []
    for z in np.nonzero(area >= BODY_SLICE_FRACTION * area.max())[0]:
        xs = np.nonzero(mask[z].any(axis=0))[0]
        ys = np.nonzero(mask[z].any(axis=1))[0]
        widths.append((xs[-1] - xs[0] + 1) * float(spacing_xyz[0]))
        depths.append((ys[-1] - ys[0] + 1) * float(spacing_xyz[1]))
    return {"width": float(np.median(widths)), "depth": float(np.median(depths))}


def volume_statistics(prepared, names: Sequence[str], bins: int = BINS, image=None) -> Dict[str, Any]:
    """Spacing, body size and per-channel body histograms (``bins`` over [-1, 1]) of one prepared
    volume (see the module); ``image`` is the input image of channel 0 (see :func:`body_mask`)."""
    mask = body_mask(prepared, image)
    sp = prepared.orientation.target.spacing
    hists = []
    for c in range(prepared.array.shape[0]):
        values = prepared.array[c][mask]
        h, _ = np.histogram(values, bins=int(bins), range=(-1.0, 1.0))
        hists.append((h / max(1, h.sum())).tolist())
    return {
        "inplane_mm": [float(min(sp[0], sp[1])), float(max(sp[0], sp[1]))],
        "through_plane_mm": float(sp[2]),
        "body_mm": _extents_mm(mask, prepared.model_grid.spacing),
        "histograms": dict(zip(names, hists)),
    }


def histogram_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Wasserstein-1 distance of two histograms over [-1, 1] (normalised units, 0 to 2)."""
    pa = np.asarray(a, dtype=float)
    pb = np.asarray(b, dtype=float)
    pa = pa / max(pa.sum(), 1e-12)
    pb = pb / max(pb.sum(), 1e-12)
    return float(np.abs(np.cumsum(pa) - np.cumsum(pb)).sum() * (2.0 / len(pa)))


def training_range(stats: Sequence[Dict[str, Any]], names: Sequence[str], dataset: str) -> Dict[str, Any]:
    """The spec's ``training_range`` from the :func:`volume_statistics` of every training volume."""
    if not stats:
        raise InputError("No training volumes to measure; the training range cannot be recorded.")
    inplane = [v for s in stats for v in s["inplane_mm"]]
    through = [s["through_plane_mm"] for s in stats]
    body = {}
    for key in ("width", "depth"):
        vals = [s["body_mm"][key] for s in stats if s["body_mm"][key] is not None]
        body[key] = [round(min(vals), 1), round(max(vals), 1)] if vals else None
    channels = []
    for name in names:
        hs = np.array([s["histograms"][name] for s in stats], dtype=float)
        mean = hs.mean(axis=0)
        if len(hs) > 1:
            loo = [histogram_distance(hs[i], (hs.sum(axis=0) - hs[i]) / (len(hs) - 1)) for i in range(len(hs))]
        else:
            loo = [0.0]
        worst = float(max(loo))
        channels.append({
            "name": name,
            "histogram": [round(float(v), 6) for v in mean],
            "max_training_distance": round(worst, 4),
            "threshold": round(max(DISTANCE_FACTOR * worst, MIN_THRESHOLD), 4),
        })
    return {
        "version": VERSION,
        "dataset": str(dataset),
        "phantom_only": str(dataset) == "phantom",
        "n_volumes": len(stats),
        "spacing_mm": {"inplane": [round(min(inplane), 4), round(max(inplane), 4)],
                       "through_plane": [round(min(through), 4), round(max(through), 4)]},
        "body_mm": body,
        "bins": BINS,
        "distance": "Wasserstein-1 between body histograms of the normalised intensity (units of [-1, 1])",
        "channels": channels,
    }


# ------------------------------------------------------------------------------ phantom rule


def is_phantom_case_file(path: Optional[str], image=None) -> bool:
    """Whether ``path`` is a volume of a ``cmsynth phantom`` case (rule: module docstring)."""
    if not path:
        return False
    meta_path = os.path.join(os.path.dirname(os.path.abspath(os.fspath(path))), "case.json")
    try:
        with open(meta_path, "r", encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or meta.get("format") != PHANTOM_FORMAT:
        return False
    if image is None:
        return True
    size = list(image.GetSize())
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    for g in (meta.get("grids") or {}).values():
        try:
            if list(g["size"]) == size and np.allclose(np.asarray(g["spacing_mm"], dtype=float), spacing, atol=1e-4):
                return True
        except (KeyError, TypeError, ValueError):
            continue
    return False


def phantom_only(spec: BundleSpec) -> bool:
    """Whether the bundle says it was trained only on digital phantom data."""
    rec = spec.training_range
    if rec is not None and "phantom_only" in rec:
        return bool(rec["phantom_only"])
    data = spec.training.get("data") or {}
    return isinstance(data, dict) and data.get("dataset") == "phantom"


# ------------------------------------------------------------------------------ checking


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _outside(value: float, lo: float, hi: float) -> bool:
    return value < lo * (1.0 - MARGIN) or value > hi * (1.0 + MARGIN)


def _range(lo: float, hi: float) -> str:
    return f"({_fmt(lo)} mm)" if lo == hi else f"({_fmt(lo)}-{_fmt(hi)} mm)"


def check_input(spec: BundleSpec, prepared, images=None, sources: Optional[Sequence[Optional[str]]] = None,
                names: Optional[Sequence[str]] = None) -> List[str]:
    """Warnings (sentences) where an input lies outside what the bundle ``spec`` was trained on.

    Args:
        spec: the bundle's typed spec (its ``training_range`` and ``training.data``).
        prepared: the engine's :class:`~CrossModalitySynthLib.preprocess.Prepared` of the input.
        images: the input images (for the phantom rule's grid check).
        sources: the input files in the same order, or None when the images were not read from
            files (then the input is not known to be a phantom case).
        names: input names in spec order (default: the spec's).
    """
    model = spec.id
    warnings: List[str] = []
    rec = spec.training_range
    names = list(names or spec.input_names)
    if rec is not None:
        stats = volume_statistics(prepared, names, int(rec.get("bins", BINS)), images[0] if images else None)
        lo, hi = rec["spacing_mm"]["inplane"]
        sx, sy = stats["inplane_mm"]
        if _outside(sx, lo, hi) or _outside(sy, lo, hi):
            got = f"{_fmt(sx)} mm" if sx == sy else f"{_fmt(sx)}-{_fmt(sy)} mm"
            warnings.append(f"{model}: the input's in-plane spacing {got} is outside the training range "
                            f"{_range(lo, hi)}.")
        lo, hi = rec["spacing_mm"]["through_plane"]
        sz = stats["through_plane_mm"]
        if _outside(sz, lo, hi):
            warnings.append(f"{model}: the input's slice spacing {_fmt(sz)} mm is outside the training range "
                            f"{_range(lo, hi)}.")
        words = {"width": "body width (left-right)", "depth": "body depth (front-back)"}
        for key, value in (rec.get("body_mm") or {}).items():
            got = stats["body_mm"].get(key)
            if value is None or got is None or key not in words:
                continue
            if _outside(got, value[0], value[1]):
                warnings.append(f"{model}: the input's {words[key]} {got:.0f} mm is outside the training range "
                                f"({value[0]:.0f}-{value[1]:.0f} mm).")
        sequences = dict(zip(spec.input_names, spec.input_sequences))
        for ch in rec.get("channels", []):
            got = stats["histograms"].get(ch["name"])
            if got is None:
                continue
            d = histogram_distance(got, ch["histogram"])
            if d > float(ch["threshold"]):
                warnings.append(f"{model}: the {sequences.get(ch['name'], ch['name'])} intensity distribution inside "
                                f"the body differs from the training data (distance {d:.3f}, threshold "
                                f"{float(ch['threshold']):.3f}).")
    if phantom_only(spec):
        srcs = list(sources) if sources is not None else []
        imgs = list(images) if images is not None else [None] * len(srcs)
        known = bool(srcs) and all(is_phantom_case_file(p, im) for p, im in zip(srcs, imgs))
        if not known:
            why = ("the input is not a phantom case (no 'cmsynth phantom' case.json beside it for its grid)" if srcs
                   else "the input is not known to be a phantom case (it was not given as files)")
            warnings.append(f"{model} was trained only on digital phantom data and {why}: expect an unusable result.")
    return warnings


__all__ = ["BINS", "MARGIN", "DISTANCE_FACTOR", "MIN_THRESHOLD", "body_mask", "volume_statistics",
           "histogram_distance", "training_range", "is_phantom_case_file", "phantom_only",
           "check_input"]
