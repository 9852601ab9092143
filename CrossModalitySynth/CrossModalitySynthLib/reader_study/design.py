"""Which images each reader sees, and in which order (no image is touched here).

Vocabulary
----------
* A **source** is one input volume: a patient's real CT or one model version's synthetic CT of
  that patient (:class:`SourceImage`).
* A **pool image** is one image that may be shown: a whole source (volumes mode) or one 2D slice
  of it at a drawn plane and position (slices mode, ``slices_per_volume`` per source).
* A **trial** is one pool image shown to one reader; each reader gets ``trials_per_reader``.

Rules of every draw (:func:`draw_trials`)
----------------------------------------
* A reader never sees a real and a synthetic image of the same patient: each patient is put in
  one *arm* (real or synthetic) per reader before any image is drawn.
* Exactly ``round(trials_per_reader * real_fraction)`` (halves rounded up) real trials per reader,
  the rest synthetic; readers are not told the ratio.
* At most ``max_per_patient`` images of one patient per reader (default 1); images are spread
  over as many patients as possible (round robin over the patients of an arm in random order).
* No pool image twice for one reader; the order of a reader's trials is a random permutation.

Designs: ``crossed`` (default) draws one image set and gives it to every reader, each in a
different random order (every image is read by every reader: best for agreement statistics);
``independent`` draws each reader's set separately (more patients covered; agreement is then
computed on the images two readers happen to share).

Everything is drawn from ``numpy.random.default_rng(seed)``: the same inputs and seed give the
same plan.
"""

import csv
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError, InputError
from ..io.formats import SUPPORTED_READ, suffix_of

REAL = "real"
SYNTHETIC = "synthetic"
TRUTHS = (REAL, SYNTHETIC)
PLANES = ("axial", "coronal", "sagittal")
DESIGNS = ("crossed", "independent")
MODES = ("slices", "volumes")

#: Model version given to synthetic files when none is named.
UNSPECIFIED_VERSION = "unspecified"

_READER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VOLUME_SUFFIXES = tuple(s for s in SUPPORTED_READ if s.startswith(".") and s not in (".seg.nrrd", ".dcm", ".ima"))


@dataclass(frozen=True)
class SourceImage:
    """One input volume of the study."""

    patient_id: str
    truth: str  #: "real" or "synthetic"
    path: str  #: absolute path
    model_version: Optional[str] = None  #: None for real images


@dataclass(frozen=True)
class PoolImage:
    """One image that may be shown: ``source`` whole, or one slice of it.

    ``position`` is a fraction in [0, 1] of the *middle band* of the body extent along the
    plane's normal (see :mod:`.prepare`); None in volumes mode.
    """

    index: int
    source: SourceImage
    plane: Optional[str] = None
    position: Optional[float] = None

    @property
    def patient_id(self) -> str:
        return self.source.patient_id

    @property
    def truth(self) -> str:
        return self.source.truth


@dataclass
class StudyPlan:
    """The pool and, per reader, the ordered pool indices of that reader's trials."""

    pool: List[PoolImage]
    readers: Dict[str, List[int]] = field(default_factory=dict)

    def used(self) -> List[int]:
        """Pool indices shown to at least one reader, ascending."""
        return sorted({i for trials in self.readers.values() for i in trials})


# --------------------------------------------------------------------------- inputs


def patient_id_of(path: str) -> str:
    """The patient id of a file: its name without the volume suffix (``p01.nii.gz`` -> ``p01``)."""
    name = os.path.basename(os.path.normpath(path))
    suffix = suffix_of(name)
    return name[: len(name) - len(suffix)] if suffix else os.path.splitext(name)[0]


def expand_inputs(items: Sequence[str], what: str) -> List[str]:
    """Files as given, and the volume files (.nii.gz, .nii, .nrrd, .nhdr, .mha, .mhd) directly inside
    each folder (sorted, not recursive; segmentations and single DICOM slices are skipped: convert a
    DICOM series to one file with ``cmsynth convert`` first)."""
    files = []
    for item in items:
        item = os.path.abspath(os.fspath(item))
        if os.path.isdir(item):
            found = sorted(
                os.path.join(item, f)
                for f in os.listdir(item)
                if not f.startswith(".")
                and f.lower().endswith(_VOLUME_SUFFIXES)
                and not f.lower().endswith(".seg.nrrd")
                and os.path.isfile(os.path.join(item, f))
            )
            if not found:
                raise InputError(f"The {what} folder {item} holds no volume files (.nii.gz, .nrrd, .mha ...); check the path.")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise InputError(f"No such {what} file or folder: {item}; check the path.")
    return files


def _by_patient(files: Sequence[str], truth: str, model_version: Optional[str]) -> List[SourceImage]:
    seen: Dict[str, str] = {}
    out = []
    for path in files:
        pid = patient_id_of(path)
        if pid in seen:
            raise InputError(
                f"Two {truth} files give patient id '{pid}' ({seen[pid]} and {path}); rename them or list "
                "the cases in a --cases CSV."
            )
        seen[pid] = path
        out.append(SourceImage(pid, truth, path, model_version if truth == SYNTHETIC else None))
    return out


def sources_from_files(
    real: Sequence[str], synthetic: Sequence[str], model_version: Optional[str] = None
) -> List[SourceImage]:
    """Sources from real and synthetic files or folders; the patient id is the file stem, so
    ``real/p01.nii.gz`` and ``synthetic/p01.nii.gz`` are two versions of patient ``p01``."""
    version = model_version or UNSPECIFIED_VERSION
    sources = _by_patient(expand_inputs(real, "real"), REAL, None)
    sources += _by_patient(expand_inputs(synthetic, "synthetic"), SYNTHETIC, version)
    return _checked(sources)


def sources_from_csv(path: str) -> List[SourceImage]:
    """Sources from a CSV with columns ``patient_id, real, synthetic, model_version``.

    One row per (patient, model version); ``real`` or ``synthetic`` may be empty. Relative paths
    are relative to the CSV's folder. A patient's real file may repeat across its rows.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise InputError(f"No such cases CSV: {path}; check the path.")
    base = os.path.dirname(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        if "patient_id" not in columns or not ({"real", "synthetic"} & set(columns)):
            raise InputError(
                f"{path} needs a header row with patient_id and real and/or synthetic columns "
                f"(and optionally model_version); it has {', '.join(columns) or 'none'}."
            )
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    real: Dict[str, str] = {}
    synthetic: Dict[Tuple[str, str], str] = {}
    for n, row in enumerate(rows, start=2):
        pid = row.get("patient_id", "")
        if not pid:
            raise InputError(f"{path}, line {n}: the patient_id is empty; fill it in.")
        r, s = row.get("real", ""), row.get("synthetic", "")
        if not r and not s:
            raise InputError(f"{path}, line {n}: neither a real nor a synthetic file is given; fill one in or drop the line.")
        if r:
            r = os.path.normpath(os.path.join(base, r))
            if pid in real and real[pid] != r:
                raise InputError(f"{path}, line {n}: patient '{pid}' has two different real files; keep one.")
            real[pid] = r
        if s:
            version = row.get("model_version", "") or UNSPECIFIED_VERSION
            if (pid, version) in synthetic:
                raise InputError(
                    f"{path}, line {n}: patient '{pid}' has two synthetic files of model version '{version}'; keep one."
                )
            synthetic[(pid, version)] = os.path.normpath(os.path.join(base, s))
    sources = [SourceImage(pid, REAL, p) for pid, p in real.items()]
    sources += [SourceImage(pid, SYNTHETIC, p, v) for (pid, v), p in synthetic.items()]
    for src in sources:
        if not os.path.isfile(src.path):
            raise InputError(f"{path}: the {src.truth} file of patient '{src.patient_id}' does not exist: {src.path}.")
    return _checked(sources)


def _checked(sources: List[SourceImage]) -> List[SourceImage]:
    by_path: Dict[str, SourceImage] = {}
    for src in sources:
        key = os.path.realpath(src.path)
        if key in by_path:
            other = by_path[key]
            raise InputError(
                f"{src.path} is listed twice (as {other.truth} of '{other.patient_id}' and as {src.truth} of "
                f"'{src.patient_id}'); each file may be one image only."
            )
        by_path[key] = src
    if not any(s.truth == REAL for s in sources):
        raise InputError("No real images were given; pass --real files or a folder (or a --cases CSV).")
    if not any(s.truth == SYNTHETIC for s in sources):
        raise InputError("No synthetic images were given; pass --synthetic files or a folder (or a --cases CSV).")
    return sources


def parse_reader_ids(values: Sequence[str]) -> List[str]:
    """Reader ids from ``--readers``: one integer N gives ``R01 ... RN``; otherwise the ids as
    given (letters, digits, ``_ . -``; unique, also ignoring case, as they become file names)."""
    values = [str(v).strip() for v in values]
    if len(values) == 1 and values[0].isdigit():
        n = int(values[0])
        if n < 1:
            raise ConfigError("--readers must be at least 1.")
        width = max(2, len(str(n)))
        return ["R{:0{}d}".format(i, width) for i in range(1, n + 1)]
    if not values:
        raise ConfigError("Give --readers N or a list of reader ids.")
    seen: Dict[str, str] = {}
    for v in values:
        if not _READER_ID.match(v):
            raise ConfigError(
                f"Reader id '{v}' cannot be used: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit."
            )
        if v.lower() in seen:
            raise ConfigError(f"Reader id '{v}' is given twice (as '{seen[v.lower()]}' and '{v}'); give each reader a unique id.")
        seen[v.lower()] = v
    return values


# --------------------------------------------------------------------------- pool


def build_pool(
    sources: Sequence[SourceImage],
    mode: str = "slices",
    planes: Sequence[str] = ("axial",),
    slices_per_volume: int = 1,
    rng: Optional[np.random.Generator] = None,
) -> List[PoolImage]:
    """All images that may be shown: each source once (volumes), or ``slices_per_volume`` slices
    per source, each at a plane drawn from ``planes`` and a uniform position (slices)."""
    if mode not in MODES:
        raise ConfigError(f"Unknown mode '{mode}'; use one of {', '.join(MODES)}.")
    rng = np.random.default_rng(0) if rng is None else rng
    pool: List[PoolImage] = []
    if mode == "volumes":
        for src in sources:
            pool.append(PoolImage(len(pool), src))
        return pool
    planes = list(planes)
    bad = [p for p in planes if p not in PLANES]
    if not planes or bad:
        raise ConfigError(f"Unknown plane(s) {', '.join(bad) or '(none)'}; use axial, coronal and/or sagittal.")
    if slices_per_volume < 1:
        raise ConfigError("--slices-per-volume must be at least 1.")
    for src in sources:
        for _ in range(int(slices_per_volume)):
            plane = planes[int(rng.integers(len(planes)))]
            pool.append(PoolImage(len(pool), src, plane, float(rng.uniform(0.0, 1.0))))
    return pool


# --------------------------------------------------------------------------- drawing trials


def n_real_trials(n_trials: int, real_fraction: float) -> int:
    """``round(n_trials * real_fraction)`` with halves rounded up."""
    return int(math.floor(n_trials * real_fraction + 0.5))


def _round_robin(groups: List[List[int]], n: int) -> List[int]:
    """Up to ``n`` items taken one per group per round (groups and items already in random order)."""
    out: List[int] = []
    depth = 0
    while len(out) < n:
        took = False
        for g in groups:
            if depth < len(g):
                out.append(g[depth])
                took = True
                if len(out) == n:
                    break
        if not took:
            break
        depth += 1
    return out


def draw_trials(
    pool: Sequence[PoolImage],
    n_trials: int,
    real_fraction: float = 0.5,
    max_per_patient: int = 1,
    rng: Optional[np.random.Generator] = None,
) -> List[int]:
    """One reader's trials: pool indices in random order, following the rules of the module
    docstring. Raises :class:`ConfigError` when the pool cannot give that many trials."""
    rng = np.random.default_rng(0) if rng is None else rng
    if n_trials < 1:
        raise ConfigError("--trials-per-reader must be at least 1.")
    if not 0.0 < real_fraction < 1.0:
        raise ConfigError(f"--real-fraction must lie strictly between 0 and 1; got {real_fraction}.")
    if max_per_patient < 1:
        raise ConfigError("--max-per-patient must be at least 1.")
    n_real = n_real_trials(n_trials, real_fraction)
    n_syn = n_trials - n_real
    items: Dict[str, Dict[str, List[int]]] = {}
    for img in pool:
        items.setdefault(img.patient_id, {REAL: [], SYNTHETIC: []})[img.truth].append(img.index)
    patients = sorted(items)
    # random item order within each patient and arm, capped
    for pid in patients:
        for arm in TRUTHS:
            lst = items[pid][arm]
            order = rng.permutation(len(lst))
            items[pid][arm] = [lst[i] for i in order][:max_per_patient]
    only_r = [p for p in patients if items[p][REAL] and not items[p][SYNTHETIC]]
    only_s = [p for p in patients if items[p][SYNTHETIC] and not items[p][REAL]]
    both = [p for p in patients if items[p][REAL] and items[p][SYNTHETIC]]
    both = [both[i] for i in rng.permutation(len(both))]
    need_r = n_real - sum(len(items[p][REAL]) for p in only_r)
    need_s = n_syn - sum(len(items[p][SYNTHETIC]) for p in only_s)
    cap_r = np.concatenate([[0], np.cumsum([len(items[p][REAL]) for p in both])])  # first k to real
    cap_s_rest = np.concatenate([np.cumsum([len(items[p][SYNTHETIC]) for p in both][::-1])[::-1], [0]])
    feasible = [k for k in range(len(both) + 1) if cap_r[k] >= need_r and cap_s_rest[k] >= need_s]
    if not feasible:
        n_pr = sum(1 for p in patients if items[p][REAL])
        n_ps = sum(1 for p in patients if items[p][SYNTHETIC])
        raise ConfigError(
            f"Cannot give a reader {n_trials} trials ({n_real} real, {n_syn} synthetic) without showing the real "
            f"and the synthetic image of one patient: there are {len(patients)} patients ({n_pr} with a real, {n_ps} "
            f"with a synthetic image) and at most {max_per_patient} image(s) per patient per reader; lower "
            "--trials-per-reader, add cases, or raise --slices-per-volume and --max-per-patient."
        )
    k = feasible[int(rng.integers(len(feasible)))]
    arm_real = only_r + both[:k]
    arm_syn = only_s + both[k:]
    arm_real = [arm_real[i] for i in rng.permutation(len(arm_real))]
    arm_syn = [arm_syn[i] for i in rng.permutation(len(arm_syn))]
    chosen = _round_robin([items[p][REAL] for p in arm_real], n_real)
    chosen += _round_robin([items[p][SYNTHETIC] for p in arm_syn], n_syn)
    assert len(chosen) == n_trials  # guaranteed by the feasibility check
    return [chosen[i] for i in rng.permutation(len(chosen))]


def make_plan(
    sources: Sequence[SourceImage],
    reader_ids: Sequence[str],
    trials_per_reader: int,
    real_fraction: float = 0.5,
    seed: int = 0,
    mode: str = "slices",
    planes: Sequence[str] = ("axial",),
    slices_per_volume: int = 1,
    max_per_patient: int = 1,
    design: str = "crossed",
) -> StudyPlan:
    """The pool and every reader's ordered trials (deterministic for ``seed``)."""
    if design not in DESIGNS:
        raise ConfigError(f"Unknown design '{design}'; use one of {', '.join(DESIGNS)}.")
    reader_ids = list(reader_ids)
    if len({r.lower() for r in reader_ids}) != len(reader_ids):
        raise ConfigError("Reader ids must be unique; one is given twice.")
    if mode == "volumes" and slices_per_volume != 1:
        raise ConfigError("--slices-per-volume applies to slices mode only; drop it or use --mode slices.")
    rng = np.random.default_rng(seed)
    pool = build_pool(sources, mode, planes, slices_per_volume, rng)
    plan = StudyPlan(pool)
    if design == "crossed":
        shared = draw_trials(pool, trials_per_reader, real_fraction, max_per_patient, rng)
        for rid in reader_ids:
            plan.readers[rid] = [shared[i] for i in rng.permutation(len(shared))]
    else:
        for rid in reader_ids:
            plan.readers[rid] = draw_trials(pool, trials_per_reader, real_fraction, max_per_patient, rng)
    return plan
