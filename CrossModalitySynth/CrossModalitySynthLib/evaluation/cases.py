"""Collecting the volumes to evaluate: lists of files, folders matched by file name, or a CSV.

Three ways to name the real and synthetic volumes (the same three for masks and label maps):

- **lists of files**: in paired mode the i-th real volume goes with the i-th synthetic one
  (same count required); in unpaired mode the two lists are two independent sets.
- **one folder each**: the volume files directly inside (``.nii.gz .nii .nrrd .nhdr .mha
  .mhd``; hidden files ignored). In paired mode files are matched by name without the suffix
  (``case1.nii.gz`` goes with ``case1.mha``), and every name must be in both folders. A folder
  that holds no such file is taken as one DICOM series.
- **a CSV** (``--real cases.csv``, ``--synthetic`` left out or the same file) with a header
  row and the columns ``case_id, real, synthetic`` and optionally ``mask, labels, pred``;
  relative paths are relative to the CSV's folder; an empty cell means "none".

Every path is checked to exist before anything is computed.
"""

import csv
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import ConfigError, InputError
from ..io.formats import suffix_of

#: suffixes of volume files looked for in folders (DICOM series are folders themselves)
FOLDER_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
CSV_COLUMNS = ("case_id", "real", "synthetic", "mask", "labels", "pred")
_CSV_ALIASES = {"id": "case_id", "case": "case_id", "pred_labels": "pred", "prediction": "pred",
                "synth": "synthetic", "sct": "synthetic", "ct": "real"}


@dataclass(frozen=True)
class Volume:
    """One input volume of a set, with its optional mask (same grid)."""

    case_id: str
    path: str
    mask: Optional[str] = None


@dataclass(frozen=True)
class CasePair:
    """A real and a synthetic volume of one case on one grid, with optional mask and label maps."""

    case_id: str
    real: str
    synthetic: str
    mask: Optional[str] = None
    labels: Optional[str] = None  #: reference label map (on the real volume's grid)
    pred: Optional[str] = None  #: predicted label map (same grid)


@dataclass(frozen=True)
class EvaluationInputs:
    """What to evaluate. ``pairs`` is filled in paired mode; ``real`` and ``synthetic`` always."""

    paired: bool
    real: Tuple[Volume, ...]
    synthetic: Tuple[Volume, ...]
    pairs: Tuple[CasePair, ...] = field(default_factory=tuple)

    @property
    def has_segmentation(self) -> bool:
        return any(p.labels or p.pred for p in self.pairs)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _stem(path: str) -> str:
    name = os.path.basename(os.path.normpath(path))
    suffix = suffix_of(name)
    return name[: -len(suffix)] if suffix else name


def _volume_files(folder: str) -> List[str]:
    files = []
    for name in sorted(os.listdir(folder)):
        full = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isfile(full):
            continue
        if name.lower().endswith(FOLDER_SUFFIXES):
            files.append(full)
    return files


def _check_exists(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise InputError("No such file or folder: {} ({}); check the path.".format(path, what))
    return path


def _is_csv(paths: Sequence[str]) -> bool:
    return len(paths) == 1 and str(paths[0]).lower().endswith(".csv")


def _case_ids(paths: Sequence[str]) -> List[str]:
    """Readable unique ids: the file name without suffix, else the parent folder's name, else both, else
    the index."""
    stems = [_stem(p) for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    parents = [os.path.basename(os.path.dirname(os.path.abspath(p))) for p in paths]
    if len(set(parents)) == len(parents):
        return parents  # e.g. case_000/ct.nii.gz, case_001/ct.nii.gz -> case_000, case_001
    both = [q + "/" + s for q, s in zip(parents, stems)]
    if len(set(both)) == len(both):
        return both
    return ["case_{:03d}".format(i) for i in range(len(paths))]


def _expand(paths: Sequence[str], what: str) -> Tuple[List[str], bool]:
    """Files named by ``paths``: one folder of volume files, or the given files/DICOM folders.

    Returns (files, from_folder).
    """
    paths = [os.fspath(p) for p in paths]
    for p in paths:
        _check_exists(p, what)
    if len(paths) == 1 and os.path.isdir(paths[0]):
        files = _volume_files(paths[0])
        if files:
            return files, True
    return paths, False


def _unique_stems(files: Sequence[str], folder_of: str) -> Dict[str, str]:
    by_stem = {}  # type: Dict[str, str]
    for f in files:
        s = _stem(f)
        if s in by_stem:
            raise InputError(
                "The folder {} holds two volumes named {!r} ({} and {}); keep one file per case.".format(
                    folder_of, s, os.path.basename(by_stem[s]), os.path.basename(f)
                )
            )
        by_stem[s] = f
    return by_stem


def _companions(paths: Optional[Sequence[str]], ids: Sequence[str], what: str, option: str) -> List[Optional[str]]:
    """Masks or label maps for the cases ``ids``: matched by name (folder) or by order (list)."""
    if not paths:
        return [None] * len(ids)
    files, from_folder = _expand(paths, what)
    if from_folder:
        by_stem = _unique_stems(files, paths[0])
        missing = [i for i in ids if i not in by_stem]
        if missing:
            more = " and {} more".format(len(missing) - 1) if len(missing) > 1 else ""
            raise InputError(
                "The {} folder {} has no file named {!r}{} (files are matched to cases by name); add it or "
                "give the {} as a list of files in case order.".format(what, paths[0], missing[0], more, what)
            )
        return [by_stem[i] for i in ids]
    if len(files) != len(ids):
        raise InputError(
            "{} {} file(s) were given for {} case(s); give one per case, in the same order ({}).".format(
                len(files), what, len(ids), option
            )
        )
    return list(files)


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def read_case_csv(path: str, paired: bool) -> EvaluationInputs:
    """Cases from a CSV with the columns ``case_id, real, synthetic[, mask][, labels][, pred]``."""
    path = _check_exists(os.fspath(path), "case list")
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError("Could not read the case list {} ({}); save it as a UTF-8 CSV.".format(path, exc)) from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise InputError("The case list {} has no data rows; give a header row and one row per case.".format(path))
    header = [_CSV_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in rows[0]]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown or "real" not in header or "synthetic" not in header:
        raise InputError(
            "The case list {} has the columns {}; it needs a header with case_id, real, synthetic and "
            "optionally mask, labels, pred.".format(path, ", ".join(rows[0]))
        )

    def cell(row: List[str], col: str) -> Optional[str]:
        if col not in header:
            return None
        i = header.index(col)
        value = row[i].strip() if i < len(row) else ""
        if not value:
            return None
        return value if os.path.isabs(value) else os.path.join(base, value)

    entries = []
    for n, row in enumerate(rows[1:], start=2):
        cid = (row[header.index("case_id")].strip() if "case_id" in header and header.index("case_id") < len(row)
               else "") or "row_{}".format(n)
        entry = {c: cell(row, c) for c in CSV_COLUMNS[1:]}
        if paired and (entry["real"] is None or entry["synthetic"] is None):
            raise InputError(
                "Row {} (case {}) of {} lacks a real or a synthetic volume; every case needs both in "
                "--paired mode.".format(n, cid, path)
            )
        for col, p in entry.items():
            if p is not None:
                _check_exists(p, "{} of case {}, row {} of {}".format(col, cid, n, path))
        entries.append((cid, entry))
    ids = [cid for cid, _ in entries]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InputError("The case list {} names case {!r} twice; give every case a unique case_id.".format(path, dup[0]))
    if not paired and any(e["labels"] or e["pred"] for _, e in entries):
        raise ConfigError("Segmentation scores (labels, pred) need --paired, because they are matched per case; add --paired.")
    real = tuple(Volume(cid, e["real"], e["mask"]) for cid, e in entries if e["real"])
    synth = tuple(Volume(cid, e["synthetic"], None if not paired else e["mask"]) for cid, e in entries if e["synthetic"])
    pairs = ()
    if paired:
        pairs = tuple(CasePair(cid, e["real"], e["synthetic"], e["mask"], e["labels"], e["pred"]) for cid, e in entries)
    return _finish(EvaluationInputs(paired, real, synth, pairs))


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------


def _finish(inputs: EvaluationInputs) -> EvaluationInputs:
    if not inputs.real:
        raise InputError("No real volume was found; check --real.")
    if not inputs.synthetic:
        raise InputError("No synthetic volume was found; check --synthetic.")
    return inputs


def collect_inputs(
    real: Sequence[str],
    synthetic: Optional[Sequence[str]],
    paired: bool,
    masks: Optional[Sequence[str]] = None,
    labels: Optional[Sequence[str]] = None,
    pred_labels: Optional[Sequence[str]] = None,
) -> EvaluationInputs:
    """Match the command line's ``--real``, ``--synthetic``, ``--masks``, ``--labels`` and
    ``--pred-labels`` into cases (see the module text). Raises InputError or ConfigError with one
    sentence when something is missing or does not match."""
    real = [os.fspath(p) for p in (real or [])]
    synthetic = [os.fspath(p) for p in (synthetic or [])]
    if not real:
        raise ConfigError("Give the real volumes with --real (files, one folder or a CSV).")
    if _is_csv(real):
        if synthetic and [os.path.abspath(s) for s in synthetic] != [os.path.abspath(real[0])]:
            raise ConfigError("With a CSV case list in --real, leave out --synthetic (the CSV names both).")
        if masks or labels or pred_labels:
            raise ConfigError("With a CSV case list, give masks and label maps as CSV columns (mask, labels, pred).")
        return read_case_csv(real[0], paired)
    if _is_csv(synthetic):
        raise ConfigError("Give the CSV case list with --real (it names both the real and the synthetic volumes).")
    if not synthetic:
        raise ConfigError("Give the synthetic volumes with --synthetic (files, one folder, or a CSV in --real).")
    if (labels or pred_labels) and not paired:
        raise ConfigError("--labels and --pred-labels need --paired, because label maps are matched per case; add --paired.")
    if bool(labels) != bool(pred_labels):
        raise ConfigError("Give both --labels (reference) and --pred-labels (predicted) for segmentation scores.")

    real_files, real_folder = _expand(real, "real volume")
    synth_files, synth_folder = _expand(synthetic, "synthetic volume")

    if not paired:
        real_ids = _case_ids(real_files)
        real_masks = _companions(masks, real_ids, "mask", "--masks")
        return _finish(EvaluationInputs(
            False,
            tuple(Volume(i, p, m) for i, p, m in zip(real_ids, real_files, real_masks)),
            tuple(Volume(i, p) for i, p in zip(_case_ids(synth_files), synth_files)),
        ))

    if real_folder and synth_folder:
        r = _unique_stems(real_files, real[0])
        s = _unique_stems(synth_files, synthetic[0])
        only_r = sorted(set(r) - set(s))
        only_s = sorted(set(s) - set(r))
        if only_r or only_s:
            name, where, other = (only_r[0], real[0], synthetic[0]) if only_r else (only_s[0], synthetic[0], real[0])
            n = len(only_r) + len(only_s)
            raise InputError(
                "In --paired mode the real and synthetic folders must hold the same file names: {!r} is in {} "
                "but not in {}{}; add or remove files so that every case is in both.".format(
                    name, where, other, " ({} unmatched in all)".format(n) if n > 1 else ""
                )
            )
        ids = sorted(r)
        real_files = [r[i] for i in ids]
        synth_files = [s[i] for i in ids]
    else:
        if len(real_files) != len(synth_files):
            raise InputError(
                "{} real but {} synthetic volume(s) were given; in --paired mode give the same number, "
                "matched by order (or one folder each, matched by file name).".format(len(real_files), len(synth_files))
            )
        ids = _case_ids(real_files)
    mask_files = _companions(masks, ids, "mask", "--masks")
    label_files = _companions(labels, ids, "labels", "--labels")
    pred_files = _companions(pred_labels, ids, "predicted labels", "--pred-labels")
    pairs = tuple(
        CasePair(i, r_, s_, m, l, p)
        for i, r_, s_, m, l, p in zip(ids, real_files, synth_files, mask_files, label_files, pred_files)
    )
    return _finish(EvaluationInputs(
        True,
        tuple(Volume(p.case_id, p.real, p.mask) for p in pairs),
        tuple(Volume(p.case_id, p.synthetic, p.mask) for p in pairs),
        pairs,
    ))
