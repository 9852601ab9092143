"""Compute every evaluation number, per case and pooled, one volume in memory at a time.

Paired mode (real and synthetic volume of a case on one grid):

- per case: MAE, PSNR, SSIM (SynthRAD2023), MS-SSIM (SynthRAD2025) inside the mask (given, or
  the body mask of the real CT), the case's HU-histogram distances, and, with label maps,
  Dice, IoU, HD95 and MSD (mm) per label;
- pooled over cases: mean, standard deviation, median, range and a bootstrap 95 % CI of the
  mean (cases resampled) of each per-case metric, plus the distribution metrics below.

Both modes (the two sets as wholes): FID and KID on per-slice features for each plane, HU
histograms pooled over the set inside the masks (KL, Jensen-Shannon, Wasserstein-1,
intersection), and mean radial power spectra of the axial slices (band distance and slopes).

Volumes are read one case at a time; only slice features, histogram counts and a few example
slices are kept. The spectra are computed in a second pass that re-reads the volumes, so memory
stays at about one case whatever the number of cases. All metrics come from
:mod:`CrossModalitySynthLib.metrics`.
"""

import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from .. import labels as label_table
from ..errors import InputError
from ..geometry import grid_difference, same_grid
from ..io import format_of, read_label_volume, read_volume
from ..metrics import (
    body_mask,
    compare_spectra,
    extract_slices,
    fid_from_features,
    get_extractor,
    histogram_intersection,
    histogram_metrics,
    hu_histogram,
    js_divergence,
    kid_from_features,
    kl_divergence,
    paired_bootstrap_ci,
    paired_metrics,
    segmentation_scores,
    wasserstein_binned,
)
from ..metrics.histogram import DEFAULT_EPS, Histogram, histogram_edges
from .cases import CasePair, EvaluationInputs, Volume
from .definitions import DEFINITIONS

ProgressCallback = Callable[[str, int, int], None]

GRID_TOL = 1e-4  # mm (and direction cosines), as the metrics' own grid check
PAIRED_KEYS = ("mae", "psnr", "ssim", "ms_ssim")
SEG_KEYS = ("dice", "iou", "hd95", "msd")


@dataclass
class EvaluationSettings:
    """Options of one evaluation (the command line's flags)."""

    features: str = "histspec"  #: "histspec", "randproj" or "inception"
    fid_weights: Optional[str] = None  #: InceptionV3 weights file (or $CMSYNTH_FID_WEIGHTS)
    device: str = "cpu"  #: for InceptionV3 features
    planes: Tuple[str, ...] = ("axial",)
    hu_range: Tuple[float, float] = (-1024.0, 3071.0)  #: histogram range
    bin_width: float = 10.0  #: histogram bin width, HU
    spectral_band: Tuple[float, float] = (0.25, 0.5)  #: cycles per pixel
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    seed: int = 0
    n_boot: int = 10000
    n_examples: int = 3  #: example cases shown (paired mode: lowest, median and highest MAE)
    force: bool = False  #: evaluate a real volume that looks like the other modality (with a warning)

    def as_dict(self) -> dict:
        """The settings metrics.json records (all but ``n_examples`` and ``force``; tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                if k not in ("n_examples", "force")}


@dataclass
class ExampleSlice:
    """One axial slice (LPS view: rows anterior -> posterior) for the report's figures."""

    case_id: str
    real: Optional[np.ndarray]
    synthetic: Optional[np.ndarray]
    mask: Optional[np.ndarray]
    aspect: float  #: row spacing / column spacing
    slice_index: int
    synthetic_aspect: Optional[float] = None  #: unpaired mode: the synthetic slice's own aspect
    role: str = ""  #: why this case is shown ("lowest MAE", "median MAE", "highest MAE", "first volumes")


@dataclass
class EvaluationResult:
    """Everything ``cmsynth evaluate`` writes: per-case rows, pooled values, plot data, warnings."""

    paired: bool
    settings: EvaluationSettings
    cases: List[dict]  #: paired: one dict per case; unpaired: one per volume (with "set")
    pooled: dict
    n: dict
    warnings: List[str]
    histograms: Tuple[Histogram, Histogram]  #: pooled real, synthetic
    spectra: object  #: metrics.spectral.SpectralComparison
    examples: List[ExampleSlice] = field(default_factory=list)
    segmentation_labels: List[int] = field(default_factory=list)
    modality: str = "CT"  #: "CT", or "MR" when the synthetic volumes look like MRIs (:func:`evaluation_modality`)

    def as_dict(self) -> dict:
        """The content of metrics.json (non-finite numbers become null)."""
        return clean_json({
            "mode": "paired" if self.paired else "unpaired",
            "modality": self.modality,
            "settings": self.settings.as_dict(),
            "n": self.n,
            "pooled": self.pooled,
            "cases": self.cases,
            "warnings": list(self.warnings),
            "definitions": DEFINITIONS,
        })


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def clean_json(obj):
    """A copy of ``obj`` with numpy scalars as Python numbers and NaN/inf as None (valid JSON)."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return clean_json(obj.tolist())
    return obj


def summarize(values: Sequence[Optional[float]], n_boot: int = 10000, seed: int = 0) -> dict:
    """mean, std (N-1), median, min, max over the finite values, and a bootstrap 95 % CI of the
    mean (cases resampled; ``paired_bootstrap_ci`` against zero). Non-finite values are counted
    in ``n_non_finite`` and left out."""
    v = np.asarray([np.nan if x is None else x for x in values], dtype=np.float64)
    finite = v[np.isfinite(v)]
    out = {"n": int(v.size), "n_non_finite": int(v.size - finite.size), "mean": None, "std": None,
           "median": None, "min": None, "max": None, "ci95": None}
    if finite.size == 0:
        return out
    out.update(
        mean=float(finite.mean()),
        std=float(finite.std(ddof=1)) if finite.size > 1 else None,
        median=float(np.median(finite)),
        min=float(finite.min()),
        max=float(finite.max()),
    )
    if finite.size >= 2:
        ci = paired_bootstrap_ci(finite, np.zeros_like(finite), n_boot=n_boot, confidence=0.95, seed=seed)
        out["ci95"] = [ci.low, ci.high]
    return out


def _size_text(size) -> str:
    return " x ".join(str(int(s)) for s in size)


def check_same_grid(ref, other, case_id: str, what: str, path: str) -> None:
    """InputError naming what differs when ``other`` is not on the real volume's grid (images, or
    readers after ``ReadImageInformation``)."""
    if same_grid(ref, other, tol=GRID_TOL):
        return
    d = grid_difference(ref, other)
    parts = []
    if tuple(d["size"][0]) != tuple(d["size"][1]):
        parts.append("size {} vs {} voxels".format(_size_text(d["size"][0]), _size_text(d["size"][1])))
    else:
        if d["spacing"] > GRID_TOL:
            parts.append("spacing {} vs {} mm".format(
                " x ".join("{:.4g}".format(s) for s in ref.GetSpacing()),
                " x ".join("{:.4g}".format(s) for s in other.GetSpacing())))
        if d["origin"] > GRID_TOL:
            parts.append("origin differs by up to {:.3g} mm".format(d["origin"]))
        if d["direction"] > GRID_TOL:
            parts.append("direction differs by up to {:.3g}".format(d["direction"]))
    raise InputError(
        "Case {}: the {} {} is not on the real volume's grid ({}); resample it onto the real volume's grid "
        "(or leave out --paired to compare the two sets unpaired).".format(case_id, what, path, "; ".join(parts))
    )


def _header(path: Optional[str]):
    """The grid of a volume file read from its header only (None for DICOM or unreadable files)."""
    if not path or os.path.isdir(path) or format_of(path) in (None, "DICOM"):
        return None
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None  # the full read reports it properly
    return reader


def precheck_grids(inputs: EvaluationInputs) -> None:
    """Paired mode: compare every case's grids from the file headers before any computation, so a
    mismatch fails at once (DICOM folders are checked when they are read)."""
    if not inputs.paired:
        return
    for pair in inputs.pairs:
        ref = _header(pair.real)
        if ref is None:
            continue
        for what, path in (("synthetic volume", pair.synthetic), ("mask", pair.mask),
                           ("reference label map", pair.labels), ("predicted label map", pair.pred)):
            other = _header(path)
            if other is not None:
                check_same_grid(ref, other, pair.case_id, what, path)


def load_volume(path: str, what: str) -> sitk.Image:
    """A 3D scalar volume as float32, with a clear error for anything else."""
    img = read_volume(path)
    if img.GetDimension() != 3:
        raise InputError("The {} {} is {}D; give a 3D volume.".format(what, path, img.GetDimension()))
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("The {} {} has {} components per voxel; give a scalar volume.".format(
            what, path, img.GetNumberOfComponentsPerPixel()))
    img = sitk.Cast(img, sitk.sitkFloat32)
    bad = int(np.count_nonzero(~np.isfinite(sitk.GetArrayViewFromImage(img))))
    if bad:
        raise InputError("The {} {} has {} NaN/Inf voxels; replace them (e.g. by -1024 HU) and run again.".format(
            what, path, bad))
    return img


def _mask_for(volume: sitk.Image, mask_path: Optional[str], case_id: str, what: str) -> Tuple[sitk.Image, str]:
    """The given mask (checked against the grid, non-empty) or the body mask of ``volume``."""
    if mask_path:
        m = read_label_volume(mask_path)
        check_same_grid(volume, m, case_id, "mask", mask_path)
        if not np.any(sitk.GetArrayViewFromImage(m)):
            raise InputError("Case {}: the mask {} is empty (no voxel > 0); give a mask that covers the body.".format(
                case_id, mask_path))
        return m, "given"
    try:
        return body_mask(volume), "body"
    except InputError as exc:
        raise InputError("Case {}: no body mask could be made from the {} ({}); give masks with --masks.".format(
            case_id, what, str(exc).rstrip("."))) from None


def _example(case_id: str, real: Optional[sitk.Image], synth: Optional[sitk.Image], mask: sitk.Image) -> ExampleSlice:
    """The axial slice with the largest mask area, in the LPS view the slice features use."""
    m_lps = sitk.DICOMOrient(mask, "LPS")
    m = sitk.GetArrayFromImage(m_lps) > 0
    k = int(np.argmax(m.reshape(m.shape[0], -1).sum(axis=1)))
    sx, sy = m_lps.GetSpacing()[0], m_lps.GetSpacing()[1]

    def cut(img):
        return None if img is None else sitk.GetArrayFromImage(sitk.DICOMOrient(img, "LPS"))[k].astype(np.float32)

    return ExampleSlice(case_id, cut(real), cut(synth), m[k], float(sy / sx), k)


def _masked_stats(volume: sitk.Image, mask: sitk.Image) -> dict:
    vals = sitk.GetArrayViewFromImage(volume)[sitk.GetArrayViewFromImage(mask) > 0]
    return {
        "n_mask_voxels": int(vals.size),
        "mean_hu": float(vals.mean()),
        "std_hu": float(vals.std()),
        "median_hu": float(np.median(vals)),
    }


def _label_values(ref: sitk.Image, pred: sitk.Image) -> List[int]:
    vals = set(np.unique(sitk.GetArrayViewFromImage(ref)).tolist())
    vals |= set(np.unique(sitk.GetArrayViewFromImage(pred)).tolist())
    vals.discard(0)
    return sorted(int(v) for v in vals)


class _Features:
    """Per-plane slice features of one set, appended volume by volume."""

    def __init__(self, extractor, planes: Sequence[str]):
        self.extractor = extractor
        self.planes = tuple(planes)
        self.feats = {p: [] for p in self.planes}  # type: Dict[str, List[np.ndarray]]

    def add(self, volume: sitk.Image) -> None:
        for plane in self.planes:
            sl = extract_slices(volume, plane, window="ct")
            if len(sl):
                self.feats[plane].append(self.extractor(sl))

    def stacked(self, plane: str) -> np.ndarray:
        return np.concatenate(self.feats[plane], axis=0)


class _Progress:
    def __init__(self, callback: Optional[ProgressCallback]):
        self.callback = callback

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.callback is not None:
            self.callback(stage, done, total)


# --------------------------------------------------------------------------------------------
# the evaluation
# --------------------------------------------------------------------------------------------


def make_extractor(settings: EvaluationSettings):
    """The feature extractor; for InceptionV3 this fails at once (InputError) without weights."""
    if settings.features == "inception":
        return get_extractor("inception", weights_path=settings.fid_weights, device=settings.device)
    return get_extractor(settings.features)


def _slices_of(volumes: Sequence[Volume], what: str, progress: _Progress, stage: str) -> Iterator[np.ndarray]:
    """Axial slices in raw HU of each volume, read one at a time (for the spectra)."""
    progress(stage, 0, len(volumes))
    for i, v in enumerate(volumes):
        img = load_volume(v.path, what)
        for s in extract_slices(img, "axial", window=None):
            yield s
        progress(stage, i + 1, len(volumes))


def _pooled_histograms(real: Histogram, synth: Histogram, eps: float = DEFAULT_EPS) -> dict:
    """The distances of ``metrics.histogram.histogram_metrics``, on histograms pooled case by case."""
    return {
        "kl_real_synth": kl_divergence(real, synth, eps),
        "kl_synth_real": kl_divergence(synth, real, eps),
        "js": js_divergence(real, synth),
        "js_bits": js_divergence(real, synth, base=2),
        "wasserstein": wasserstein_binned(real, synth),
        "intersection": histogram_intersection(real, synth),
        "eps": eps,
        "n_real_voxels": int(real.counts.sum()),
        "n_synth_voxels": int(synth.counts.sum()),
    }


def evaluation_modality(inputs: EvaluationInputs) -> str:
    """"MR" when the first synthetic volume looks like an MRI (an MR-vs-MR evaluation of synthetic
    MRIs), else "CT" (the default: synthetic CTs in HU, also when the guess is unknown)."""
    from ..preprocess.modality import guess_modality

    first = inputs.pairs[0].synthetic if inputs.paired else inputs.synthetic[0].path
    return "MR" if guess_modality(load_volume(first, "synthetic volume")).modality == "MR" else "CT"


def check_real_modality(image: sitk.Image, path: str, case_id: str, modality: str, force: bool,
                        notes: List[str]) -> None:
    """Refuse a real volume that looks like the other modality than the evaluation's (an MRI given
    as the real CT of synthetic CTs, or a CT as the real MRI of synthetic MRIs): InputError with
    one sentence, or with ``force`` the same sentence as a warning in ``notes``. The check is
    :func:`preprocess.modality.modality_mismatch`, the one model inputs get."""
    from ..preprocess.modality import article_name, modality_mismatch

    guess = modality_mismatch(image, modality)
    if guess is None:
        return
    msg = "Case {}: the real volume {} looks like {} ({}), but the synthetic volumes are evaluated as {}s".format(
        case_id, path, article_name(guess.modality), guess.reason, "CT" if modality == "CT" else "MRI")
    if not force:
        raise InputError(msg + "; give the real {} of each case, or pass --force to evaluate anyway.".format(
            "CT" if modality == "CT" else "MRI"))
    notes.append(msg + " (--force: evaluated anyway).")


def _paired_case(pair: CasePair, settings: EvaluationSettings, feats: Tuple[_Features, _Features],
                 hists: List[np.ndarray], notes: List[str], modality: str = "CT") -> dict:
    ct = load_volume(pair.real, "real volume")
    check_real_modality(ct, pair.real, pair.case_id, modality, settings.force, notes)
    sct = load_volume(pair.synthetic, "synthetic volume")
    check_same_grid(ct, sct, pair.case_id, "synthetic volume", pair.synthetic)
    mask, source = _mask_for(ct, pair.mask, pair.case_id, "real volume")
    pm = paired_metrics(ct, sct, mask)
    if pm.ms_ssim_note:
        notes.append("Case {}: MS-SSIM is NaN ({}; {} voxels), as in SynthRAD2025; MAE, PSNR and SSIM are "
                     "reported, and pooled MS-SSIM is over the other cases.".format(
                         pair.case_id, pm.ms_ssim_note, pm.n_mask_voxels))
    hm = histogram_metrics(ct, sct, mask, mask, settings.hu_range, settings.bin_width)
    row = {
        "case_id": pair.case_id,
        "real": pair.real,
        "synthetic": pair.synthetic,
        "mask": pair.mask,
        "mask_source": source,
        "n_mask_voxels": pm.n_mask_voxels,
        "mae": pm.mae,
        "psnr": pm.psnr,
        "ssim": pm.ssim,
        "ms_ssim": pm.ms_ssim,
        "histogram": {"js_bits": hm.js_bits, "wasserstein": hm.wasserstein, "intersection": hm.intersection},
    }
    hists[0] += hu_histogram(ct, mask, settings.hu_range, settings.bin_width).counts
    hists[1] += hu_histogram(sct, mask, settings.hu_range, settings.bin_width).counts
    feats[0].add(ct)
    feats[1].add(sct)
    if pair.labels or pair.pred:
        row["segmentation"] = _segmentation(pair, ct)
    return row


def _paired_examples(pairs: Sequence[CasePair], rows: Sequence[dict], n_examples: int) -> List[ExampleSlice]:
    """Example slices of the cases with the lowest, median and highest MAE (re-read from disk)."""
    if n_examples < 1 or not rows:
        return []
    order = sorted(range(len(rows)), key=lambda i: rows[i]["mae"])
    picks = []  # type: List[Tuple[int, str]]
    for pos, role in ((0, "lowest MAE"), ((len(order) - 1) // 2, "median MAE"), (len(order) - 1, "highest MAE")):
        if order[pos] not in [p for p, _ in picks] and len(picks) < n_examples:
            picks.append((order[pos], role))
    if len(rows) == 1:
        picks = [(0, "the only case")]
    out = []
    for i, role in picks:
        pair = pairs[i]
        ct = load_volume(pair.real, "real volume")
        sct = load_volume(pair.synthetic, "synthetic volume")
        mask, _ = _mask_for(ct, pair.mask, pair.case_id, "real volume")
        ex = _example(pair.case_id, ct, sct, mask)
        ex.role = role
        out.append(ex)
    return out


def _segmentation(pair: CasePair, ct: sitk.Image) -> dict:
    if not (pair.labels and pair.pred):
        raise InputError("Case {}: give both a reference and a predicted label map, or neither.".format(pair.case_id))
    ref = read_label_volume(pair.labels)
    pred = read_label_volume(pair.pred)
    check_same_grid(ct, ref, pair.case_id, "reference label map", pair.labels)
    check_same_grid(ct, pred, pair.case_id, "predicted label map", pair.pred)
    out = {}
    values = _label_values(ref, pred)
    if not values:  # both empty: perfect by definition
        values = [1]
    for v in values:
        s = segmentation_scores(pred, ref, label=v, one_empty="inf")
        out[str(v)] = {"label": v, "name": label_table.name_of(v), "dice": s.dice, "iou": s.iou,
                       "hd95": s.hd95, "msd": s.msd, "n_pred": s.n_pred, "n_ref": s.n_ref}
    return out


def _unpaired_volume(v: Volume, which: str, settings: EvaluationSettings, feats: _Features,
                     hist: np.ndarray, notes: Optional[List[str]] = None,
                     modality: str = "CT") -> Tuple[dict, sitk.Image, sitk.Image]:
    img = load_volume(v.path, which + " volume")
    if which == "real":
        check_real_modality(img, v.path, v.case_id, modality, settings.force, notes if notes is not None else [])
    mask, source = _mask_for(img, v.mask, v.case_id, which + " volume")
    hist += hu_histogram(img, mask, settings.hu_range, settings.bin_width).counts
    feats.add(img)
    row = {"set": which, "case_id": v.case_id, "path": v.path, "mask": v.mask, "mask_source": source}
    row.update(_masked_stats(img, mask))
    return row, img, mask


def evaluate(inputs: EvaluationInputs, settings: Optional[EvaluationSettings] = None,
             progress: Optional[ProgressCallback] = None, extractor=None) -> EvaluationResult:
    """Compute all metrics of ``inputs`` (see the module text). ``progress(stage, done, total)``
    is called after each volume; ``extractor`` overrides the one named in ``settings``."""
    settings = settings or EvaluationSettings()
    precheck_grids(inputs)
    prog = _Progress(progress)
    ex = extractor if extractor is not None else make_extractor(settings)
    ex_name = getattr(ex, "name", type(ex).__name__)
    ex_dim = int(getattr(ex, "dim", 0) or 0)
    notes = []  # type: List[str]
    modality = evaluation_modality(inputs)
    if modality == "MR":
        notes.append(
            "The synthetic volumes look like MRIs, so this is an MR-vs-MR evaluation: every value named in HU is in "
            "the volumes' own intensity units, and without --masks the mask (> -500) is the whole volume, air "
            "included; give body masks with --masks for metrics inside the body.")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        edges = histogram_edges(settings.hu_range, settings.bin_width)
        edges_n = len(edges) - 1
        hists = [np.zeros(edges_n), np.zeros(edges_n)]
        feats = (_Features(ex, settings.planes), _Features(ex, settings.planes))
        examples = []  # type: List[ExampleSlice]
        rows = []  # type: List[dict]

        if inputs.paired:
            total = len(inputs.pairs)
            prog("cases", 0, total)
            for i, pair in enumerate(inputs.pairs):
                rows.append(_paired_case(pair, settings, feats, hists, notes, modality))
                prog("cases", i + 1, total)
            examples = _paired_examples(inputs.pairs, rows, settings.n_examples)
        else:
            ex_real = ex_synth = None
            for which, vols, k in (("real", inputs.real, 0), ("synthetic", inputs.synthetic, 1)):
                prog(which + " volumes", 0, len(vols))
                for i, v in enumerate(vols):
                    row, img, mask = _unpaired_volume(v, which, settings, feats[k], hists[k], notes, modality)
                    rows.append(row)
                    if i == 0:
                        exs = _example(v.case_id, img, None, mask)
                        if k == 0:
                            ex_real = exs
                        else:
                            ex_synth = exs
                    prog(which + " volumes", i + 1, len(vols))
            examples = [ExampleSlice("{} | {}".format(ex_real.case_id, ex_synth.case_id), ex_real.real,
                                     ex_synth.real, None, ex_real.aspect, ex_real.slice_index, ex_synth.aspect,
                                     "first volume of each set")]

        h_real = Histogram(hists[0], edges)
        h_synth = Histogram(hists[1], edges)
        pooled = {"histogram": _pooled_histograms(h_real, h_synth)}
        pooled["histogram"].update(hu_range=list(settings.hu_range), bin_width=settings.bin_width)

        # distribution metrics per plane (the same steps as metrics.distribution_metrics)
        planes = {}
        whole_set_kid = []  # type: List[str]
        for plane in settings.planes:
            fr = feats[0].stacked(plane)
            fs = feats[1].stacked(plane)
            fid = fid_from_features(fr, fs)
            kid = kid_from_features(fr, fs, settings.kid_subsets, settings.kid_subset_size, settings.seed)
            planes[plane] = {"fid": fid.fid, "kid_mean": kid.mean, "kid_std": kid.std, "kid_subset_size": kid.subset_size,
                             "n_real": fid.n_real, "n_synth": fid.n_synth, "biased_small_n": fid.biased_small_n,
                             "fid_method": fid.method}
            if fid.biased_small_n:
                notes.append(
                    "FID ({}): N = {} real and {} synthetic slices, not more than the feature dimension {}: the "
                    "covariances are singular, so FID was computed by the eigenvalue method (eigh, exact for singular "
                    "covariances) and is biased upwards; compare FIDs only at equal N and never with published "
                    "values.".format(plane, fid.n_real, fid.n_synth, fid.dim))
            if kid.subset_size == min(fid.n_real, fid.n_synth) and kid.subset_size < settings.kid_subset_size:
                whole_set_kid.append(plane)
        if whole_set_kid:
            notes.append(
                "KID ({}): the smaller set has fewer than {} slices, so every KID subset holds all of its slices and "
                "the standard deviation over subsets says little.".format(", ".join(whole_set_kid), settings.kid_subset_size))
        pooled["distribution"] = {
            "extractor": ex_name,
            "dim": ex_dim,
            "planes": planes,
            "fid": float(np.mean([p["fid"] for p in planes.values()])),
            "kid": float(np.mean([p["kid_mean"] for p in planes.values()])),
        }
        if ex_name != "inception":
            notes.append(
                "FID/KID use the '{}' features, not InceptionV3: compare them only within this study, never with "
                "published FIDs.".format(ex_name))

        # spectra: second pass over the files
        reals = [p.real for p in inputs.pairs] if inputs.paired else [v.path for v in inputs.real]
        synths = [p.synthetic for p in inputs.pairs] if inputs.paired else [v.path for v in inputs.synthetic]
        spec = compare_spectra(
            _slices_of([Volume("", p) for p in reals], "real volume", prog, "spectra (real)"),
            _slices_of([Volume("", p) for p in synths], "synthetic volume", prog, "spectra (synthetic)"),
            band=settings.spectral_band,
        )
        pooled["spectral"] = {"spectral_distance": spec.distance, "slope_real": spec.slope_real,
                              "slope_synth": spec.slope_synth, "band": list(spec.band),
                              "n_real_slices": spec.n_real, "n_synth_slices": spec.n_synth}

        seg_labels = []  # type: List[int]
        if inputs.paired:
            pooled["paired"] = {k: summarize([r[k] for r in rows], settings.n_boot, settings.seed) for k in PAIRED_KEYS}
            if len(rows) < 2:
                notes.append("Only {} case: no spread or confidence interval over cases.".format(len(rows)))
            seg_rows = [r for r in rows if "segmentation" in r]
            if seg_rows:
                seg_labels = sorted({int(k) for r in seg_rows for k in r["segmentation"]})
                pooled["segmentation"] = {}
                for lab in seg_labels:
                    per = [r["segmentation"][str(lab)] for r in seg_rows if str(lab) in r["segmentation"]]
                    entry = {"label": lab, "name": label_table.name_of(lab), "n_cases": len(per)}
                    for k in SEG_KEYS:
                        entry[k] = summarize([p[k] for p in per], settings.n_boot, settings.seed)
                    pooled["segmentation"][str(lab)] = entry
                    n_inf = entry["hd95"]["n_non_finite"]
                    if n_inf:
                        notes.append(
                            "Segmentation, {}: in {} case(s) one of the two masks is empty, so HD95 and MSD are "
                            "infinite (null in metrics.json, 'inf' in per_case.csv) and left out of their "
                            "means.".format(label_table.name_of(lab), n_inf))

    library_warnings = []
    for w in caught:
        msg = str(w.message).strip()
        if msg.startswith("FID from N ="):  # restated per plane above
            continue
        if msg not in library_warnings:
            library_warnings.append(msg)
    n = {
        "cases": len(inputs.pairs) if inputs.paired else None,
        "real_volumes": len(inputs.real),
        "synthetic_volumes": len(inputs.synthetic),
        "slices": {p: {"real": v["n_real"], "synthetic": v["n_synth"]} for p, v in pooled["distribution"]["planes"].items()},
        "real_voxels_in_masks": pooled["histogram"]["n_real_voxels"],
        "synthetic_voxels_in_masks": pooled["histogram"]["n_synth_voxels"],
    }
    return EvaluationResult(
        paired=inputs.paired,
        settings=settings,
        cases=rows,
        pooled=pooled,
        n=n,
        warnings=notes + library_warnings,
        histograms=(h_real, h_synth),
        spectra=spec,
        examples=examples,
        segmentation_labels=seg_labels,
        modality=modality,
    )
