"""Training data: cases -> the library's ``prepare`` -> a memory-mapped slice cache -> 2D samples.

Every volume goes through :func:`CrossModalitySynthLib.preprocess.prepare` (the same code the
inference engine runs) and its labels through :func:`prepare_label`; the result on the model
grid is cached once as ``.npy`` files (slices contiguous, ``(Z, C, Y, X)`` float32 and
``(Z, Y, X)`` uint8 liver mask) and opened with ``numpy.load(mmap_mode="r")``, so data loading
costs a memory copy per slice and a GPU is not starved.

Sampling is a pure function of ``(seed, epoch, index)``: the sampler yields ``(epoch, index)``
keys, and each sample draws its partner slice, crop and flip from
``numpy.random.default_rng([seed, epoch, index])``. Data order therefore survives a resume
exactly and does not depend on the number of worker processes.

Augmentation (CycleGAN reference, scaled to the configured size): scale the slice by
``load_size / crop_size`` (bilinear; labels nearest), pad to at least ``crop_size`` with -1
(air), random crop ``crop_size``, random left-right flip.
"""

import glob
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from CrossModalitySynthLib import labels as L
from CrossModalitySynthLib.errors import ConfigError, InputError
from CrossModalitySynthLib.io import read_volume
from CrossModalitySynthLib.preprocess import ModelGridSpec, Prepared, prepare, prepare_label

from .config import MR_SEQUENCES

CACHE_VERSION = 1
#: normalised value above which a voxel counts as body for slice selection (air is -1).
FOREGROUND_LEVEL = -0.95


# ----------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class CaseRef:
    """One volume set of one patient: MRI sequences (with labels) or a CT.

    ``kind`` is "MR" (the ``sequences`` channels), "CT" (the CT on its own grid) or
    "CT_ON_MR" (phantom only: the same patient's CT on the MR grid, the paired reference).
    """

    dataset: str
    root: str
    case: str
    kind: str
    sequences: Tuple[str, ...] = ()

    @property
    def modality(self) -> str:
        return "MR" if self.kind == "MR" else "CT"

    def describe(self) -> str:
        what = "+".join(self.sequences) if self.kind == "MR" else self.kind.lower()
        return "{} case {} ({})".format(self.dataset, self.case, what)


def list_phantom_cases(root: str) -> List[str]:
    """``case_*`` folders of a phantom root (sorted)."""
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(root, "case_*")) if os.path.isdir(p))


def list_cases(dataset: str, root: str, modality: str) -> List[str]:
    if dataset == "phantom":
        return list_phantom_cases(root)
    from CrossModalitySynthLib.datasets import chaos

    return chaos.list_cases(root, modality)


def _phantom_file(ref: CaseRef, name: str) -> str:
    path = os.path.join(ref.root, ref.case, name)
    if not os.path.isfile(path):
        raise InputError(
            "{} has no {}; write the case with 'cmsynth phantom' or fix the case list.".format(ref.describe(), name)
        )
    return path


def _liver_image(label: sitk.Image) -> sitk.Image:
    """Binary liver mask (lesions included) as a UInt8 image on the label's grid."""
    arr = L.liver_mask(sitk.GetArrayViewFromImage(label)).astype(np.uint8)
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(label)
    return out


def load_case(ref: CaseRef, with_label: bool = True) -> Tuple[List[sitk.Image], List[str], Optional[sitk.Image]]:
    """``(images, channel names, liver mask or None)`` of one case, on the images' grid."""
    if ref.dataset == "phantom":
        if ref.kind == "MR":
            images = [read_volume(_phantom_file(ref, "{}.nii.gz".format(s))) for s in ref.sequences]
            names = [MR_SEQUENCES[s][0] for s in ref.sequences]
            label = _liver_image(read_volume(_phantom_file(ref, "labels.nii.gz"))) if with_label else None
        elif ref.kind == "CT":
            images, names = [read_volume(_phantom_file(ref, "ct.nii.gz"))], ["CT"]
            label = _liver_image(read_volume(_phantom_file(ref, "ct_labels.nii.gz"))) if with_label else None
        elif ref.kind == "CT_ON_MR":
            images, names = [read_volume(_phantom_file(ref, "ct_on_mr.nii.gz"))], ["CT"]
            label = _liver_image(read_volume(_phantom_file(ref, "labels.nii.gz"))) if with_label else None
        else:  # pragma: no cover
            raise ValueError(ref.kind)
        return images, names, label
    if ref.dataset == "chaos":
        from CrossModalitySynthLib.datasets import chaos

        if ref.kind == "MR":
            cases = [chaos.load_mr(ref.root, ref.case, MR_SEQUENCES[s][1]) for s in ref.sequences]
            images = [c.image for c in cases]
            names = [MR_SEQUENCES[s][0] for s in ref.sequences]
            lab = cases[0].label
        elif ref.kind == "CT":
            c = chaos.load_ct(ref.root, ref.case)
            images, names, lab = [c.image], ["CT"], c.label
        else:
            raise ConfigError("CHAOS has no CT on the MR grid; paired validation needs phantom cases.")
        label = None
        if with_label:
            if lab is None:
                raise InputError("{} has no ground truth; use a training case.".format(ref.describe()))
            label = _liver_image(lab)
        return images, names, label
    raise ConfigError("Unknown dataset {!r}.".format(ref.dataset))  # pragma: no cover


def prepare_case(ref: CaseRef, spec: ModelGridSpec, with_label: bool = True) -> Tuple[Prepared, Optional[np.ndarray]]:
    """``prepare`` one case (the inference path) and put its liver mask on the model grid."""
    images, names, label = load_case(ref, with_label)
    prepared = prepare(images, spec, modality=ref.modality, names=names)
    lab = prepare_label(label, prepared).astype(np.uint8) if label is not None else None
    return prepared, lab


# ----------------------------------------------------------------------------------- cache


def _source_files(ref: CaseRef) -> List[str]:
    folder = os.path.join(ref.root, ref.case)
    if ref.dataset == "phantom":
        return sorted(glob.glob(os.path.join(folder, "*.nii.gz")))
    out = []
    for r, _, names in os.walk(os.path.join(ref.root, "Train_Sets", ref.modality, ref.case)):
        out.extend(os.path.join(r, n) for n in names)
    return sorted(out)


def cache_key(ref: CaseRef, spec: ModelGridSpec, with_label: bool) -> str:
    stamp = []
    for p in _source_files(ref):
        st = os.stat(p)
        stamp.append([os.path.basename(p), st.st_size, int(st.st_mtime)])
    blob = json.dumps(
        {
            "v": CACHE_VERSION,
            "ref": [ref.dataset, os.path.abspath(ref.root), ref.case, ref.kind, list(ref.sequences)],
            "spec": spec.to_dict(),
            "label": bool(with_label),
            "files": stamp,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class CachedVolume:
    """One prepared volume in the cache; arrays are opened lazily (memory-mapped) per process."""

    def __init__(self, folder: str, key: str, meta: dict):
        self.folder = folder
        self.key = key
        self.meta = meta
        self._image = None
        self._label = None

    # memory maps are re-opened in each DataLoader worker instead of being pickled
    def __getstate__(self):
        d = dict(self.__dict__)
        d["_image"] = None
        d["_label"] = None
        return d

    @property
    def image(self) -> np.ndarray:
        """(Z, C, Y, X) float32 in [-1, 1], memory-mapped."""
        if self._image is None:
            self._image = np.load(os.path.join(self.folder, self.key + "_image.npy"), mmap_mode="r")
        return self._image

    @property
    def label(self) -> Optional[np.ndarray]:
        """(Z, Y, X) uint8 liver mask or None."""
        if not self.meta["has_label"]:
            return None
        if self._label is None:
            self._label = np.load(os.path.join(self.folder, self.key + "_label.npy"), mmap_mode="r")
        return self._label

    @property
    def foreground(self) -> np.ndarray:
        return np.asarray(self.meta["foreground"], dtype=np.float64)

    @property
    def name(self) -> str:
        return self.meta["case"]


def _save_npy_atomic(path: str, array: np.ndarray) -> None:
    tmp = "{}.tmp{}.npy".format(path[:-4], os.getpid())
    np.save(tmp, array)
    os.replace(tmp, path)


def cached_volume(cache_dir: str, ref: CaseRef, spec: ModelGridSpec, with_label: bool = True) -> CachedVolume:
    """Open the cached prepared volume of ``ref``, building it first when missing."""
    os.makedirs(cache_dir, exist_ok=True)
    key = cache_key(ref, spec, with_label)
    meta_path = os.path.join(cache_dir, key + ".json")
    if os.path.isfile(meta_path):
        with open(meta_path, "r", encoding="utf-8") as f:
            return CachedVolume(cache_dir, key, json.load(f))
    prepared, lab = prepare_case(ref, spec, with_label)
    arr = np.ascontiguousarray(prepared.array.transpose(1, 0, 2, 3))  # (Z, C, Y, X)
    fg = (arr > FOREGROUND_LEVEL).mean(axis=(1, 2, 3))
    _save_npy_atomic(os.path.join(cache_dir, key + "_image.npy"), arr)
    if lab is not None:
        _save_npy_atomic(os.path.join(cache_dir, key + "_label.npy"), np.ascontiguousarray(lab, dtype=np.uint8))
    meta = {
        "case": ref.case,
        "ref": ref.describe(),
        "kind": ref.kind,
        "shape_zcyx": list(arr.shape),
        "has_label": lab is not None,
        "foreground": [round(float(v), 6) for v in fg],
        "spec": spec.to_dict(),
        "warnings": list(prepared.warnings),
    }
    tmp = meta_path + ".tmp{}".format(os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(meta, f)
    os.replace(tmp, meta_path)
    return CachedVolume(cache_dir, key, meta)


# ------------------------------------------------------------------------------ slice sets


class SliceSet:
    """The sampled slices of some cached volumes (slices with enough body)."""

    def __init__(self, volumes: Sequence[CachedVolume], min_foreground: float = 0.05, name: str = ""):
        self.volumes = list(volumes)
        self.name = name
        self.index: List[Tuple[int, int]] = []
        for v, vol in enumerate(self.volumes):
            for z, f in enumerate(vol.foreground):
                if f >= min_foreground:
                    self.index.append((v, z))
        if not self.index:
            raise InputError(
                "No slice of the {} data has at least {:.0%} body; check the data or lower data.min_foreground.".format(
                    name or "training", min_foreground
                )
            )

    def __len__(self) -> int:
        return len(self.index)

    @property
    def channels(self) -> int:
        return int(self.volumes[0].meta["shape_zcyx"][1])

    def image(self, i: int) -> np.ndarray:
        v, z = self.index[i]
        return np.array(self.volumes[v].image[z], dtype=np.float32)

    def label(self, i: int) -> np.ndarray:
        v, z = self.index[i]
        lab = self.volumes[v].label
        if lab is None:
            raise InputError("{} has no labels.".format(self.volumes[v].meta["ref"]))
        return np.array(lab[z], dtype=np.int64)

    def cases(self) -> List[str]:
        return [v.name for v in self.volumes]


class PairedSliceSet(SliceSet):
    """Slices of ``volumes`` with the same slice of ``targets`` (one target volume per volume, on
    the same model grid): the phantom's MRI with its ``ct_on_mr``, prepared by the same code."""

    def __init__(self, volumes: Sequence[CachedVolume], targets: Sequence[CachedVolume], min_foreground: float = 0.05,
                 name: str = ""):
        super().__init__(volumes, min_foreground, name)
        self.targets = list(targets)
        if len(self.targets) != len(self.volumes):
            raise ValueError("PairedSliceSet needs one target volume per volume")
        for v, t in zip(self.volumes, self.targets):
            a, b = v.meta["shape_zcyx"], t.meta["shape_zcyx"]
            if a[0] != b[0] or a[2:] != b[2:]:
                raise InputError(
                    "{} ({}) and {} ({}) are not on the same model grid; paired training needs the CT on the MR grid.".format(
                        v.meta["ref"], a, t.meta["ref"], b
                    )
                )

    @property
    def target_channels(self) -> int:
        return int(self.targets[0].meta["shape_zcyx"][1])

    def target(self, i: int) -> np.ndarray:
        v, z = self.index[i]
        return np.array(self.targets[v].image[z], dtype=np.float32)


def augment_slice(
    image: np.ndarray,
    label: Optional[np.ndarray],
    rng: Optional[np.random.Generator],
    load_size: int,
    crop_size: int,
    flip: bool,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Scale by ``load_size / crop_size``, pad to ``crop_size``, crop, flip; ``rng=None`` = centre crop, no flip.

    ``image`` (C, H, W) float32 in [-1, 1], ``label`` (H, W) int -> tensors (C, s, s) and (1, s, s).
    """
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    y = None if label is None else torch.from_numpy(np.ascontiguousarray(label, dtype=np.float32))[None, None]
    h, w = x.shape[-2:]
    scale = float(load_size) / float(crop_size)
    if scale != 1.0:
        size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if y is not None:
            y = F.interpolate(y, size=size, mode="nearest-exact")  # same pixel centres as bilinear
        h, w = size
    ph, pw = max(0, crop_size - h), max(0, crop_size - w)
    if ph or pw:
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        x = F.pad(x, pad, value=-1.0)
        if y is not None:
            y = F.pad(y, pad, value=0.0)
        h, w = x.shape[-2:]
    if rng is None:
        top, left = (h - crop_size) // 2, (w - crop_size) // 2
        do_flip = False
    else:
        top = int(rng.integers(0, h - crop_size + 1))
        left = int(rng.integers(0, w - crop_size + 1))
        do_flip = bool(flip) and bool(rng.random() < 0.5)
    x = x[..., top : top + crop_size, left : left + crop_size]
    if y is not None:
        y = y[..., top : top + crop_size, left : left + crop_size]
    if do_flip:
        x = torch.flip(x, dims=(-1,))
        if y is not None:
            y = torch.flip(y, dims=(-1,))
    x = x[0].clamp_(-1.0, 1.0).contiguous()
    return x, (None if y is None else y[0].round().long().contiguous())


def intensity_augment(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """MONAI intensity augmentation of one (C, H, W) slice in [-1, 1] (``data.intensity_aug``):
    gamma contrast 0.7-1.5 (p 0.3), Gaussian blur of 0.5-1 pixel (p 0.2) and Gaussian noise of
    standard deviation up to 0.1 (p 0.3), drawn from ``rng``; the result is clipped to [-1, 1]."""
    from monai.transforms import Compose, RandAdjustContrast, RandGaussianNoise, RandGaussianSmooth

    t = Compose([
        RandAdjustContrast(prob=0.3, gamma=(0.7, 1.5)),
        RandGaussianSmooth(sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0), prob=0.2),
        RandGaussianNoise(prob=0.3, mean=0.0, std=0.1),
    ])
    t.set_random_state(seed=int(rng.integers(2**31)))
    out = np.asarray(t(image.numpy()), dtype=np.float32)
    return torch.from_numpy(np.clip(out, -1.0, 1.0))


@dataclass
class AugmentSettings:
    load_size: int
    crop_size: int
    flip: bool
    intensity: bool = False


class UnpairedSlices(Dataset):
    """Unpaired 2D samples: ``A`` slice ``index % len(A)``, ``B`` a random slice (another patient).

    Items are keyed ``(epoch, index)``; ``length`` (default ``max(len(A), len(B))``, the
    reference's epoch) may be larger for a fixed number of steps per epoch.

    When ``a`` is a :class:`PairedSliceSet` the item also holds ``A_paired``: the same patient's
    slice of the other modality (e.g. the phantom's CT on the MR grid), cropped and flipped
    together with ``A`` (both are stacked into one array before :func:`augment_slice`).
    """

    def __init__(self, a: SliceSet, b: SliceSet, aug: AugmentSettings, seed: int, label_a: bool = False,
                 length: Optional[int] = None):
        self.a, self.b, self.aug, self.seed, self.label_a = a, b, aug, int(seed), bool(label_a)
        self.length = int(length) if length else max(len(a), len(b))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key) -> Dict[str, torch.Tensor]:
        epoch, i = key
        rng = np.random.default_rng([self.seed, int(epoch), int(i)])
        ia = int(i) % len(self.a)
        ib = int(rng.integers(len(self.b)))
        paired = isinstance(self.a, PairedSliceSet)
        a_src = self.a.image(ia)
        if paired:
            a_src = np.concatenate([a_src, self.a.target(ia)], axis=0)
        a_img, a_lab = augment_slice(
            a_src, self.a.label(ia) if self.label_a else None, rng, self.aug.load_size, self.aug.crop_size, self.aug.flip
        )
        b_img, _ = augment_slice(self.b.image(ib), None, rng, self.aug.load_size, self.aug.crop_size, self.aug.flip)
        out = {"A": a_img, "B": b_img}
        if paired:
            c = self.a.channels
            out["A"], out["A_paired"] = a_img[:c].contiguous(), a_img[c:].contiguous()
        if a_lab is not None:
            out["A_label"] = a_lab
        return out


class LabelledSlices(Dataset):
    """Image + liver mask samples from one or more slice sets (e.g. real + synthetic MRI)."""

    def __init__(self, sets: Sequence[SliceSet], aug: AugmentSettings, seed: int, length: Optional[int] = None):
        self.sets = list(sets)
        self.aug, self.seed = aug, int(seed)
        self.offsets = np.cumsum([0] + [len(s) for s in self.sets])
        self.base = int(self.offsets[-1])
        self.length = int(length) if length else self.base

    def __len__(self) -> int:
        return self.length

    def locate(self, i: int) -> Tuple[SliceSet, int]:
        i = int(i) % self.base
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self.sets[k], i - int(self.offsets[k])

    def __getitem__(self, key) -> Dict[str, torch.Tensor]:
        epoch, i = key
        rng = np.random.default_rng([self.seed, int(epoch), int(i)])
        s, j = self.locate(i)
        img, lab = augment_slice(s.image(j), s.label(j), rng, self.aug.load_size, self.aug.crop_size, self.aug.flip)
        if self.aug.intensity:
            img = intensity_augment(img, rng)
        return {"image": img, "label": lab}


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys: a :class:`DistributedSampler` permutation of the epoch,
    this rank's shard, truncated to whole batches, starting after ``skip`` batches (resume)."""

    def __init__(self, dataset: Dataset, world_size: int, rank: int, seed: int, batch_size: int):
        self.dist = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.batch_size = int(batch_size)
        self.keys: List[Tuple[int, int]] = []

    def batches_per_epoch(self) -> int:
        return len(self.dist) // self.batch_size

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> int:
        """Prepare the keys of ``epoch``; returns the number of batches left."""
        self.dist.set_epoch(int(epoch))
        n = self.batches_per_epoch() * self.batch_size
        idx = list(iter(self.dist))[:n]
        idx = idx[int(skip_batches) * self.batch_size :]
        self.keys = [(int(epoch), int(i)) for i in idx]
        return len(self.keys) // self.batch_size

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        return iter(list(self.keys))

    def __len__(self) -> int:
        return len(self.keys)


# ------------------------------------------------------------------------- case selection


def _check_cases(dataset: str, root: str, cases: Sequence[str], what: str, kind: str = "MR") -> List[str]:
    available = list_cases(dataset, root, kind)
    missing = [c for c in cases if c not in available]
    if missing:
        raise ConfigError(
            "{}: case(s) {} not found in {} (it has {}); fix the case list.".format(
                what, ", ".join(map(str, missing)), root, ", ".join(available[:8]) + (" ..." if len(available) > 8 else "")
            )
        )
    return [str(c) for c in cases]


def held_out_cases(cfg) -> List[str]:
    """Cases the (real MRI) training must not use: validation cases in data.root and, for
    augment, its test cases and (phantom only: on CHAOS a CT id is another person than the MR
    case of the same number) the CT cases that become synthetic MRI."""
    out = []
    same = cfg.val.root is not None and os.path.abspath(cfg.val.root) == os.path.abspath(cfg.data.root)
    if same and cfg.val.cases:
        out += list(cfg.val.cases)
    if cfg.task == "augment":
        out += list(cfg.augment.test_cases or [])
        if cfg.data.dataset == "phantom":
            out += list(cfg.augment.ct_cases or [])
    return out


def training_cases(cfg) -> Tuple[List[str], List[str]]:
    """``(mr_cases, ct_cases)`` for training, disjoint patients for unpaired tasks.

    Validation cases in ``data.root`` (and, for augment, its test and CT cases) are never used."""
    d = cfg.data
    excluded = set(held_out_cases(cfg))
    if d.dataset == "chaos":
        mr = list(d.mr_cases) if d.mr_cases is not None else [c for c in list_cases("chaos", d.root, "MR") if c not in excluded]
        ct = list(d.ct_cases) if d.ct_cases is not None else [c for c in list_cases("chaos", d.root, "CT") if c not in excluded]
        if cfg.task in ("unet", "augment"):
            ct = []
        return _check_cases("chaos", d.root, mr, "data.mr_cases"), _check_cases("chaos", d.root, ct, "data.ct_cases", "CT")
    base = list(d.cases) if d.cases is not None else [c for c in list_phantom_cases(d.root) if c not in excluded]
    base = _check_cases("phantom", d.root, base, "data.cases")
    leak = sorted(set(base) & excluded)
    if leak:
        raise ConfigError("Training case(s) {} are also validation/test cases; remove them from data.cases.".format(", ".join(leak)))
    if cfg.task in ("unet", "augment"):
        mr = list(d.mr_cases) if d.mr_cases is not None else base
        return _check_cases("phantom", d.root, mr, "data.mr_cases"), []
    mr = list(d.mr_cases) if d.mr_cases is not None else base[0::2]
    ct = list(d.ct_cases) if d.ct_cases is not None else base[1::2]
    mr = _check_cases("phantom", d.root, mr, "data.mr_cases")
    ct = _check_cases("phantom", d.root, ct, "data.ct_cases")
    both = sorted(set(mr) & set(ct))
    if both:
        raise ConfigError(
            "Case(s) {} are in both data.mr_cases and data.ct_cases; unpaired training needs different patients.".format(
                ", ".join(both)
            )
        )
    if not mr or not ct:
        raise ConfigError("Unpaired training needs at least one MRI and one CT case; give more data.cases.")
    return mr, ct


def validation_cases(cfg, kind: str = "MR") -> List[str]:
    """Validation case names (at most ``val.max_cases``); ``kind`` "CT" checks them against CHAOS's CT list."""
    v = cfg.val
    if v.root is None:
        return []
    modality = "CT" if kind == "CT" else "MR"
    if v.cases is not None:
        cases = _check_cases(v.dataset, v.root, v.cases, "val.cases", modality)
    else:
        if v.root and cfg.data.root and os.path.abspath(v.root) == os.path.abspath(cfg.data.root):
            raise ConfigError("val.root is the training data folder; list the held-out cases in val.cases.")
        cases = list_cases(v.dataset, v.root, modality)
    return cases[: v.max_cases]


def default_cache_dir(cfg, out: str) -> str:
    return cfg.data.cache_dir or os.path.join(out, "cache")


# ------------------------------------------------------------------------ patient identity


def phantom_seed(root: str, case: str) -> Optional[int]:
    """The seed in a phantom case's ``case.json`` (the patient's identity), None when unreadable."""
    try:
        with open(os.path.join(root, case, "case.json"), "r", encoding="utf-8") as f:
            return int(json.load(f)["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def phantom_seeds(root: str, cases: Sequence[str]) -> Optional[List[int]]:
    """Seeds of ``cases`` in order, or None when any case.json is unreadable."""
    seeds = [phantom_seed(root, c) for c in cases]
    return None if any(s is None for s in seeds) else [int(s) for s in seeds]


def patient_id(dataset: str, modality: str, case: str, seed: Optional[int] = None) -> str:
    """One patient's identity across folders and runs.

    Phantom: ``seed:<n>`` (a folder name such as case_000 is no identity: phantom folders reuse
    it; one phantom patient has both a CT and MRI). CHAOS: ``CT:<id>`` or ``MR:<id>`` (CHAOS
    CT and MR patients with the same number are different people)."""
    if dataset == "phantom":
        if seed is None:
            raise ValueError("a phantom patient needs its seed")
        return "seed:{}".format(int(seed))
    return "{}:{}".format("CT" if modality == "CT" else "MR", case)


def case_identities(dataset: str, root: str, cases: Sequence[str], modality: str,
                    seeds: Optional[Sequence[int]] = None, what: str = "") -> Dict[str, str]:
    """``{case: patient id}`` for ``cases`` of one modality; phantom seeds come from ``seeds``
    (e.g. recorded in a checkpoint) or from each case's ``case.json`` in ``root``."""
    cases = [str(c) for c in cases]
    if dataset != "phantom":
        return {c: patient_id(dataset, modality, c) for c in cases}
    if seeds is None or len(seeds) != len(cases):
        seeds = phantom_seeds(root, cases)
    if seeds is None:
        raise ConfigError(
            "The phantom patients of {} cannot be identified: {} has no readable case.json for every case; "
            "point it at the folder 'cmsynth phantom' wrote.".format(what or "the cases", root)
        )
    return {c: patient_id(dataset, modality, c, s) for c, s in zip(cases, seeds)}


def training_record(dataset: str, root: str, mr_cases: Sequence[str], ct_cases: Sequence[str]) -> Dict[str, object]:
    """The training patients a run records in its data summary (checkpoint ``data``, bundle
    ``training.data``): the case lists and, for phantom data, their seeds when readable."""
    out: Dict[str, object] = {"dataset": dataset, "root": root, "mr_cases": list(mr_cases), "ct_cases": list(ct_cases)}
    if dataset == "phantom":
        for key, cases in (("mr", mr_cases), ("ct", ct_cases)):
            seeds = phantom_seeds(root, cases) if cases else []
            if seeds is not None:
                out["{}_phantom_seeds".format(key)] = seeds
    return out


def recorded_patients(data: Dict[str, object], what: str) -> Dict[str, List[str]]:
    """``{"MR": [patient ids], "CT": [...]}`` that a run's data record (``training_record``, a
    checkpoint's ``data`` or a bundle's ``training.data``) says it trained on; phantom seeds come
    from the record or, when it has none, from the recorded root's case.json files."""
    if not isinstance(data, dict) or data.get("dataset") not in ("phantom", "chaos") or "mr_cases" not in data:
        raise ConfigError(
            "{} does not record its training patients (data set and case lists); use a checkpoint or a bundle "
            "written by this training package.".format(what[:1].upper() + what[1:])
        )
    out: Dict[str, List[str]] = {}
    for modality, key in (("MR", "mr"), ("CT", "ct")):
        cases = [str(c) for c in (data.get("{}_cases".format(key)) or [])]
        seeds = data.get("{}_phantom_seeds".format(key))
        ids = case_identities(str(data["dataset"]), str(data.get("root") or ""), cases, modality,
                              seeds=seeds if isinstance(seeds, list) else None, what=what)
        out[modality] = [ids[c] for c in cases]
    return out
