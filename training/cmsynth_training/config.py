"""Training configurations: YAML files -> typed dataclasses, checked before anything runs.

A config file is a YAML mapping with the sections below (every key optional except
``data.root``; the defaults are the CycleGAN reference settings)::

    task: cyclegan            # optional; must match the command's task when given
    seed: 0
    direction: MR->CT         # cyclegan only: MR->CT (A = MRI, B = CT) or CT->MR
    data:    {dataset, root, mr_sequences, cases, mr_cases, ct_cases, grid, load_size, crop_size, ...}
    val:     {dataset, root, cases, max_cases, every, batch_size}
    model:   {ngf, n_blocks, ndf, n_layers, mr_channels, unet_channels, unet_strides, segmenter, ...}
    train:   {epochs, epochs_decay, steps_per_epoch, batch_size, lr, beta1, beta2, lambda_cycle_a, ...}
    export:  {id, version, description, licence, width_note}
    augment: {translator, ct_cases, test_cases, seeds, n_boot}

``--set section.key=value`` overrides one value (the value is parsed as YAML). Relative paths
are taken relative to the current working directory. Every problem (unknown key, wrong type,
wrong channel count, missing data folder) raises :class:`ConfigError` with one sentence that
names the key and says what to do; the command line prints it and exits non-zero.
"""

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, get_args, get_origin, get_type_hints

import yaml

from CrossModalitySynthLib.errors import ConfigError
from CrossModalitySynthLib.preprocess import ModelGridSpec
from CrossModalitySynthLib.registry.spec import Direction

TASKS = ("cyclegan", "essnet", "unet", "augment")
#: ``train.seg_loss`` values (see :mod:`.losses`) and ``model.segmenter`` values.
SEG_LOSSES = ("synseg", "dice", "ce", "dice_ce")
SEGMENTERS = ("unet", "resnet9")


def trained_seg_loss(ckpt: Dict[str, Any]) -> Optional[str]:
    """The ``train.seg_loss`` a checkpoint's run used. EssNet checkpoints written before ``synseg``
    became the default carry ``None``, which then meant ``dice`` (MONAI's defaults)."""
    loss = ((ckpt.get("config") or {}).get("train") or {}).get("seg_loss")
    if loss is None and ckpt.get("task") == "essnet":
        return "dice"
    return loss
DATASETS = ("phantom", "chaos")

#: MRI sequence names used in configs and bundle specs -> (spec "sequence" text, CHAOS sequence).
MR_SEQUENCES: Dict[str, Tuple[str, str]] = {
    "t1_in": ("T1 in-phase", "T1in"),
    "t1_opp": ("T1 opposed-phase", "T1out"),
    "t2": ("T2", "T2"),
}
MAX_MR_CHANNELS = 3


@dataclass
class DataConfig:
    """Training data. Cases are folder names (phantom ``case_XXX``, CHAOS ids).

    Attributes:
        dataset: "phantom" (folders written by ``cmsynth phantom``) or "chaos" (CHAOS 2019 root).
        root: the data set folder (required, must exist).
        mr_sequences: MRI channels in order, from ``t1_in``, ``t1_opp``, ``t2`` (1 to 3).
        cases: phantom training cases (default: every ``case_*`` folder that is not a
            validation/test case). Ignored for CHAOS, whose CT and MR patients differ anyway.
        mr_cases, ct_cases: the MRI and the CT patients of unpaired training; by default the
            phantom ``cases`` are split alternately (even positions MRI, odd CT) so that no patient
            is seen in both modalities; CHAOS uses its MR and CT case lists.
        extra_mr_root, extra_mr_cases: extra MRI training cases in the phantom layout
            (``<seq>.nii.gz`` + ``labels.nii.gz``), e.g. synthetic MRI written by ``augment``.
        grid: the model grid (a :class:`ModelGridSpec` dict: spacing, inplane_multiple ...). Its
            ``inplane_multiple`` defaults to the network's input multiple.
        load_size, crop_size: each slice is scaled by ``load_size / crop_size`` and randomly
            cropped to ``crop_size`` (the reference's 286 -> 256, scaled to the configured size).
        flip: random left-right flip (the reference's default).
        intensity_aug: U-Net only: MONAI intensity augmentation of each sample (random gamma
            contrast, blur and noise; :func:`cmsynth_training.data.intensity_augment`). Off by
            default (the paper's U-Net has none); it makes a U-Net less sensitive to the texture
            of synthetic MRI.
        min_foreground: slices with less body than this fraction are not sampled.
        cache_dir: where preprocessed volumes are cached as .npy (default ``<out>/cache``).
        num_workers: DataLoader worker processes.
    """

    dataset: str = "phantom"
    root: str = ""
    mr_sequences: List[str] = field(default_factory=lambda: ["t1_in"])
    cases: Optional[List[str]] = None
    mr_cases: Optional[List[str]] = None
    ct_cases: Optional[List[str]] = None
    extra_mr_root: Optional[str] = None
    extra_mr_cases: Optional[List[str]] = None
    grid: Dict[str, Any] = field(default_factory=dict)
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    intensity_aug: bool = False
    min_foreground: float = 0.05
    cache_dir: Optional[str] = None
    num_workers: int = 0


@dataclass
class ValConfig:
    """Validation each ``every`` epochs on full volumes through prepare/restore (the inference path).

    ``root`` null switches validation off. Phantom cases give paired metrics (sCT MAE in HU inside
    the body against ``ct_on_mr``, liver Dice); CHAOS cases give the liver Dice only.
    """

    dataset: str = "phantom"
    root: Optional[str] = None
    cases: Optional[List[str]] = None
    max_cases: int = 3
    every: int = 1
    batch_size: int = 8


@dataclass
class ModelConfig:
    """Network widths. ``mr_channels`` (optional) must equal ``len(data.mr_sequences)``.

    ``segmenter`` (EssNet's S): ``unet`` (default; the library's MONAI U-Net of
    ``unet_channels`` / ``unet_strides``) or ``resnet9`` (SynSeg-Net's segmenter: the ResNet
    generator with 9 residual blocks of width ``ngf``, 2 output channels, Tanh, N(0, 0.02) init).
    """

    ngf: int = 64
    n_blocks: int = 9
    ndf: int = 64
    n_layers: int = 3
    mr_channels: Optional[int] = None
    unet_channels: List[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])
    unet_strides: List[int] = field(default_factory=lambda: [2, 2, 2, 2])
    num_res_units: int = 2
    dropout: float = 0.0
    segmenter: str = "unet"


@dataclass
class TrainConfig:
    """Optimisation and run control (defaults: the CycleGAN reference).

    ``epochs`` at constant learning rate, then ``epochs_decay`` with linear decay to 0.
    ``steps_per_epoch`` null = one pass over the larger domain's slices. ``max_steps`` and
    ``max_wall_time_s`` stop early (a checkpoint is saved). ``amp``: "auto" = bf16 autocast on
    CUDA and off on CPU, "bf16" = bf16 autocast on CUDA and on the CPU too (faster only on CPUs
    with AMX or AVX512-BF16; elsewhere emulated, slower, and the run log warns), or "off". ``seg_loss``: ``synseg`` (SynSeg-Net's
    ``dice_loss_norm``: foreground only, squared denominators, pooled over the batch), ``dice``
    (MONAI ``DiceLoss`` defaults), ``ce`` or ``dice_ce``; null = the task's default (EssNet
    ``synseg``, written into the config so the checkpoint records it; U-Net ``dice_ce``).
    ``lambda_identity`` null = the task's default (CycleGAN 0.5 x the cycle weight, EssNet 0:
    its loss has no identity term). ``num_threads`` sets torch's
    CPU threads (null = torch's default; 1 is much faster on a CPU shared with other jobs).
    ``lambda_paired`` (cyclegan MR->CT or essnet, phantom data only; default 0 = the paper's purely
    unpaired method): cyclegan adds ``lambda_paired * |G_A(MRI) - CT|`` (L1, normalised units)
    with the training MRI patients' own CT on the MR grid (``ct_on_mr``), same crop and flip;
    essnet draws its CT from the CT patients' ``ct_on_mr`` and adds ``lambda_paired *
    |G_A(CT) - MRI|`` with their own MRI. Real unpaired data has no such pairs; it is meant for
    demo models on the digital phantom.
    ``batched_step`` (cyclegan, essnet): one generator call on ``[real_A, real_B]`` for the fake and the
    identity image, one on ``[fake_B, real_B, real_A]``, and one discriminator call on
    ``[real, fake]`` (the same maths: InstanceNorm and the PatchGAN work per sample); false =
    the reference's separate calls. ``lr_scaling``: "none" keeps ``lr`` under DDP, where the
    effective batch is ``batch_size x world size``; "linear" multiplies it by the world size.
    ``stop_check_every``: under DDP the ranks agree on the wall-time stop every N steps (one
    collective call each time), and at every epoch end. ``compile``: "off", "default" or
    "reduce-overhead" (``torch.compile`` of the networks; the latter uses CUDA graphs on a GPU);
    not measured yet.
    """

    epochs: int = 100
    epochs_decay: int = 100
    steps_per_epoch: Optional[int] = None
    max_steps: Optional[int] = None
    max_wall_time_s: Optional[float] = None
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    gan_mode: str = "lsgan"
    lambda_cycle_a: float = 10.0
    lambda_cycle_b: float = 10.0
    lambda_identity: Optional[float] = None
    lambda_paired: float = 0.0
    pool_size: int = 50
    seg_loss: Optional[str] = None
    lambda_seg: float = 1.0
    init_gain: float = 0.02
    amp: str = "auto"
    device: str = "auto"
    num_threads: Optional[int] = None
    deterministic: bool = False
    checkpoint_every_steps: Optional[int] = None
    keep_epoch_checkpoints: bool = False
    log_every: int = 10
    preview_every: int = 1
    tensorboard: bool = True
    progress: bool = True
    batched_step: bool = True
    lr_scaling: str = "none"
    stop_check_every: int = 20
    compile: str = "off"


@dataclass
class ExportConfig:
    """What ``python -m cmsynth_training export`` writes into the bundle's spec."""

    id: str = ""
    version: str = "0.1.0"
    description: str = ""
    licence: str = "Apache-2.0"
    width_note: str = ""


@dataclass
class AugmentConfig:
    """The liver paper's experiment: U-Net on real MRI vs real + synthetic MRI.

    Attributes:
        translator: a CT->MR model bundle folder or a training checkpoint (.pt) of ``essnet`` or
            a ``cyclegan`` with direction CT->MR; it turns the ``ct_cases`` into synthetic MRI.
        ct_cases: CT cases with liver labels (in ``data.root``), other patients than the MRI.
        test_cases: held-out real MRI cases (in ``data.root``) for the per-patient evaluation.
            No test patient may be a training patient of the translator or of either U-Net arm
            (checked before anything runs; phantom patients are compared by seed, CHAOS CT and
            MR patients are different people).

    Both arms must train for the same number of steps: ``train.steps_per_epoch`` is required
    and ``train.max_wall_time_s`` is refused.
        seeds: one U-Net per seed and arm.
        n_boot: bootstrap resamples of the patients.
    """

    translator: str = ""
    ct_cases: Optional[List[str]] = None
    test_cases: Optional[List[str]] = None
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    n_boot: int = 10000


@dataclass
class Config:
    task: str = ""
    seed: int = 0
    direction: str = Direction.MR_TO_CT.value
    data: DataConfig = field(default_factory=DataConfig)
    val: ValConfig = field(default_factory=ValConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    # ---- derived values ---------------------------------------------------------------------
    @property
    def mr_channels(self) -> int:
        return len(self.data.mr_sequences)

    def grid_spec(self, input_multiple: int) -> ModelGridSpec:
        """The :class:`ModelGridSpec` of ``data.grid``; ``inplane_multiple`` defaults to the net's."""
        g = dict(self.data.grid)
        if g.get("inplane_size") is None and "inplane_multiple" not in g:
            g["inplane_multiple"] = int(input_multiple)
        return ModelGridSpec.from_dict(g)


# ------------------------------------------------------------------------------------ parsing


def _type_name(tp) -> str:
    origin = get_origin(tp)
    if origin is None:
        return getattr(tp, "__name__", str(tp))
    args = [a for a in get_args(tp) if a is not type(None)]
    if origin in (list, List):
        return "a list of {}".format(_type_name(args[0])) if args else "a list"
    if origin in (dict, Dict):
        return "a mapping"
    if len(args) == 1:
        return "{} or null".format(_type_name(args[0]))
    return str(tp)


def _coerce(value: Any, tp, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is not None and type(None) in args:  # Optional[X]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(value, inner, key)
    bad = ConfigError("Configuration key '{}' must be {}, got {!r}.".format(key, _type_name(tp), value))
    if origin in (list, List):
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(v, args[0], "{}[{}]".format(key, i)) for i, v in enumerate(value)] if args else list(value)
    if origin in (dict, Dict):
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key.endswith(("version", "id")):
            return str(value)
        if not isinstance(value, str):
            raise bad
        return value
    if tp is Any:
        return value
    raise bad  # pragma: no cover


def _build(cls, data: Any, prefix: str, source: str):
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError("'{}' in {} must be a mapping of keys, got {!r}.".format(prefix or "the file", source, data))
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = "{}.{}".format(prefix, key) if prefix else str(key)
        if key not in names:
            raise ConfigError(
                "Unknown configuration key '{}' in {}; known keys{}: {}.".format(
                    full, source, " in '{}'".format(prefix) if prefix else "", ", ".join(names)
                )
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, full, source)
        else:
            kwargs[key] = _coerce(value, tp, full)
    return cls(**kwargs)


def _set_dotted(tree: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError("--set {}: '{}' is not a section.".format(dotted, p))
        node = nxt
    node[parts[-1]] = value


def parse_overrides(items: Optional[Sequence[str]]) -> List[Tuple[str, Any]]:
    """``["train.lr=1e-3", "data.mr_sequences=[t1_in,t2]"]`` -> [(key, parsed YAML value)]."""
    out = []
    for item in items or ():
        if "=" not in item:
            raise ConfigError("--set expects key=value (for example train.lr=0.001), got {!r}.".format(item))
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError("--set {!r}: the key is empty.".format(item))
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        out.append((key, value))
    return out


def load_config(
    path: Optional[str],
    task: str,
    overrides: Optional[Sequence[str]] = None,
    check_paths: bool = True,
    data: Optional[Mapping[str, Any]] = None,
) -> Config:
    """Read ``path`` (or use ``data``), apply ``--set`` overrides, check everything, return the Config."""
    if task not in TASKS:
        raise ConfigError("Unknown task {!r}; use one of {}.".format(task, ", ".join(TASKS)))
    source = path or "the configuration"
    if data is None:
        if not path or not os.path.isfile(path):
            raise ConfigError("Configuration file {} not found; give an existing YAML file with --config.".format(path))
        try:
            with open(path, "r", encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ConfigError("{} is not valid YAML ({}); fix the file.".format(path, str(exc).splitlines()[0])) from None
    tree = dict(data or {})
    tree = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in tree.items()}
    for key, value in parse_overrides(overrides):
        _set_dotted(tree, key, value)
    cfg = _build(Config, tree, "", source)
    if cfg.task and cfg.task != task:
        raise ConfigError(
            "{} is a '{}' configuration but the '{}' task was asked for; use the matching config.".format(source, cfg.task, task)
        )
    cfg.task = task
    validate(cfg, source, check_paths=check_paths)
    return cfg


def config_from_dict(data: Mapping[str, Any], task: str, overrides=None, check_paths: bool = True) -> Config:
    """As :func:`load_config` from an in-memory mapping (tests, checkpoints)."""
    return load_config(None, task, overrides, check_paths=check_paths, data=data)


# --------------------------------------------------------------------------------- validation


def _require_dir(path: Optional[str], key: str, source: str) -> None:
    if not path:
        raise ConfigError("'{}' is not set in {}; give the data folder.".format(key, source))
    if not os.path.isdir(path):
        raise ConfigError("Data folder '{}' ({}) does not exist; check '{}' in {}.".format(path, key, key, source))


def _positive(value, key: str, minimum=1) -> None:
    if value is not None and value < minimum:
        raise ConfigError("Configuration key '{}' must be >= {}, got {}.".format(key, minimum, value))


def validate(cfg: Config, source: str = "the configuration", check_paths: bool = True) -> None:
    """Raise :class:`ConfigError` for the first problem found."""
    d, t, m = cfg.data, cfg.train, cfg.model
    if d.dataset not in DATASETS:
        raise ConfigError("data.dataset {!r} is unknown; use one of {}.".format(d.dataset, ", ".join(DATASETS)))
    if cfg.val.root is not None and cfg.val.dataset not in DATASETS:
        raise ConfigError("val.dataset {!r} is unknown; use one of {}.".format(cfg.val.dataset, ", ".join(DATASETS)))
    seqs = list(d.mr_sequences)
    if not 1 <= len(seqs) <= MAX_MR_CHANNELS:
        raise ConfigError(
            "data.mr_sequences lists {} MRI channel(s); the networks take 1 to {}: choose from {}.".format(
                len(seqs), MAX_MR_CHANNELS, ", ".join(MR_SEQUENCES)
            )
        )
    for s in seqs:
        if s not in MR_SEQUENCES:
            raise ConfigError("Unknown MRI sequence {!r} in data.mr_sequences; use {}.".format(s, ", ".join(MR_SEQUENCES)))
    if len(set(seqs)) != len(seqs):
        raise ConfigError("data.mr_sequences lists a sequence twice ({}); give each channel once.".format(seqs))
    if m.mr_channels is not None and m.mr_channels != len(seqs):
        raise ConfigError(
            "model.mr_channels is {} but data.mr_sequences gives {} channel(s) ({}); make them agree.".format(
                m.mr_channels, len(seqs), ", ".join(seqs)
            )
        )
    if cfg.direction not in Direction.synthesis():
        raise ConfigError("direction {!r} is unknown; use {}.".format(cfg.direction, " or ".join(map(str, Direction.synthesis()))))
    if cfg.task != "cyclegan" and cfg.direction != Direction.MR_TO_CT:
        raise ConfigError("'direction' applies to the cyclegan task only (EssNet is always CT->MR); remove it.")
    for key in ("ngf", "ndf", "n_layers"):
        _positive(getattr(m, key), "model." + key)
    _positive(m.n_blocks, "model.n_blocks", 0)
    if len(m.unet_strides) != len(m.unet_channels) - 1 or len(m.unet_channels) < 2:
        raise ConfigError("model.unet_strides needs one entry less than model.unet_channels (at least 2 levels).")
    if not 0.0 <= m.dropout < 1.0:
        raise ConfigError("model.dropout must be in [0, 1), got {}.".format(m.dropout))
    _positive(t.epochs, "train.epochs", 0)
    _positive(t.epochs_decay, "train.epochs_decay", 0)
    if t.epochs + t.epochs_decay < 1:
        raise ConfigError("train.epochs + train.epochs_decay must be at least 1.")
    for key in ("num_threads", "steps_per_epoch", "max_steps", "batch_size", "log_every", "checkpoint_every_steps", "preview_every"):
        _positive(getattr(t, key), "train." + key)
    _positive(t.pool_size, "train.pool_size", 0)
    if t.lambda_identity is not None and t.lambda_identity < 0:
        raise ConfigError("train.lambda_identity must be >= 0, got {}.".format(t.lambda_identity))
    if t.lambda_paired < 0:
        raise ConfigError("train.lambda_paired must be >= 0, got {}.".format(t.lambda_paired))
    if t.lambda_paired > 0:
        cyclegan_mr_ct = cfg.task == "cyclegan" and cfg.direction == Direction.MR_TO_CT
        if not (cyclegan_mr_ct or cfg.task == "essnet") or d.dataset != "phantom":
            raise ConfigError(
                "train.lambda_paired needs phantom data (the CT on the MR grid of the same patient) and the cyclegan "
                "task with direction MR->CT or the essnet task; set it to 0 otherwise."
            )
    if t.lr <= 0:
        raise ConfigError("train.lr must be positive, got {}.".format(t.lr))
    if t.gan_mode not in ("lsgan", "vanilla"):
        raise ConfigError("train.gan_mode {!r} is unknown; use lsgan (the reference) or vanilla.".format(t.gan_mode))
    if t.seg_loss is not None and t.seg_loss not in SEG_LOSSES:
        raise ConfigError("train.seg_loss {!r} is unknown; use {}.".format(t.seg_loss, ", ".join(SEG_LOSSES)))
    if cfg.task == "essnet" and t.seg_loss is None:
        t.seg_loss = "synseg"  # EssNet's default, recorded in the checkpoint's config
    if m.segmenter not in SEGMENTERS:
        raise ConfigError("model.segmenter {!r} is unknown; use unet or resnet9 (SynSeg-Net's).".format(m.segmenter))
    if t.amp not in ("auto", "bf16", "off"):
        raise ConfigError("train.amp {!r} is unknown; use auto, bf16 or off.".format(t.amp))
    if t.lr_scaling not in ("none", "linear"):
        raise ConfigError("train.lr_scaling {!r} is unknown; use none or linear.".format(t.lr_scaling))
    if t.compile not in ("off", "default", "reduce-overhead"):
        raise ConfigError("train.compile {!r} is unknown; use off, default or reduce-overhead.".format(t.compile))
    if t.compile != "off" and cfg.task != "cyclegan":
        raise ConfigError("train.compile is offered for the cyclegan task only; set it to off for {}.".format(cfg.task))
    if isinstance(t.stop_check_every, bool) or not isinstance(t.stop_check_every, int) or t.stop_check_every < 1:
        raise ConfigError("train.stop_check_every must be a whole number of steps, 1 or more (got {!r}).".format(
            t.stop_check_every))
    if t.device not in ("auto", "cpu", "cuda"):
        raise ConfigError("train.device {!r} is unknown; use auto, cpu or cuda.".format(t.device))
    _positive(d.crop_size, "data.crop_size", 4)
    if d.load_size < d.crop_size:
        raise ConfigError(
            "data.load_size ({}) must be >= data.crop_size ({}); the reference loads 286 and crops 256.".format(
                d.load_size, d.crop_size
            )
        )
    if d.intensity_aug and cfg.task not in ("unet", "augment"):
        raise ConfigError("data.intensity_aug is for the liver U-Net (unet, augment); set it to false for {}.".format(cfg.task))
    if not 0.0 <= d.min_foreground < 1.0:
        raise ConfigError("data.min_foreground must be in [0, 1), got {}.".format(d.min_foreground))
    _positive(d.num_workers, "data.num_workers", 0)
    multiple = required_multiple(cfg)
    if d.crop_size % multiple:
        raise ConfigError(
            "data.crop_size {} is not a multiple of {} (the network's input multiple for the {} task); "
            "use e.g. {}.".format(d.crop_size, multiple, cfg.task, (d.crop_size // multiple + 1) * multiple)
        )
    try:
        spec = cfg.grid_spec(multiple)
    except ConfigError as exc:
        raise ConfigError("data.grid: {}".format(str(exc).replace("Model spec: ", ""))) from None
    if spec.inplane_multiple is not None and spec.inplane_multiple % multiple:
        raise ConfigError(
            "data.grid.inplane_multiple {} is not a multiple of {} (the network's input multiple).".format(
                spec.inplane_multiple, multiple
            )
        )
    if spec.inplane_size is not None and any(s % multiple for s in spec.inplane_size):
        raise ConfigError("data.grid.inplane_size {} must be multiples of {}.".format(list(spec.inplane_size), multiple))
    _positive(cfg.val.max_cases, "val.max_cases")
    _positive(cfg.val.every, "val.every")
    _positive(cfg.val.batch_size, "val.batch_size")
    if cfg.task == "augment":
        a = cfg.augment
        if not a.translator:
            raise ConfigError("augment.translator is not set; give a CT->MR bundle folder or training checkpoint.")
        if len(a.seeds) < 1:
            raise ConfigError("augment.seeds must list at least one seed.")
        if a.test_cases is not None and len(a.test_cases) < 2:
            raise ConfigError("augment.test_cases needs at least 2 held-out patients for a paired comparison.")
        _positive(a.n_boot, "augment.n_boot", 100)
        if t.steps_per_epoch is None:
            raise ConfigError(
                "train.steps_per_epoch is not set; the augment task needs it so that both U-Net arms (real and "
                "real+synthetic) train for the same number of steps."
            )
        if t.max_wall_time_s is not None:
            raise ConfigError(
                "train.max_wall_time_s would stop the two U-Net arms after different numbers of steps; remove it "
                "for the augment task (use train.max_steps or fewer epochs)."
            )
    if check_paths:
        _require_dir(d.root, "data.root", source)
        if d.extra_mr_root is not None:
            _require_dir(d.extra_mr_root, "data.extra_mr_root", source)
        if cfg.val.root is not None:
            _require_dir(cfg.val.root, "val.root", source)
        if d.cache_dir is not None and os.path.exists(d.cache_dir) and not os.path.isdir(d.cache_dir):
            raise ConfigError("data.cache_dir {} is a file; give a folder.".format(d.cache_dir))
        if cfg.task == "augment" and not os.path.exists(cfg.augment.translator):
            raise ConfigError(
                "augment.translator {} does not exist; give a CT->MR bundle folder or a training checkpoint.".format(
                    cfg.augment.translator
                )
            )


def required_multiple(cfg: Config) -> int:
    """H and W multiple the task's networks need (generator 4, U-Net: product of strides)."""
    unet = 1
    for s in cfg.model.unet_strides:
        unet *= int(s)
    if cfg.task == "cyclegan":
        return 4
    if cfg.task == "essnet":
        return 4 if cfg.model.segmenter == "resnet9" else math.lcm(4, unet)
    return unet
