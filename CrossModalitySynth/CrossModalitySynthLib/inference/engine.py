"""The engine: :func:`synthesize` (MRI -> sCT, CT -> sMRI) and :func:`segment` (MRI -> liver).

Everything model-specific comes from the bundle's spec: the network, the inputs and their
order, the preprocessing (model grid, normalisation) and the output modality.
"""

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import SimpleITK as sitk

from ..errors import ConfigError, InputError
from ..preprocess import ModelGridSpec, Prepared, prepare
from ..preprocess.checks import check_volume
from ..preprocess.modality import warn_if_modality_mismatch
from ..registry import Bundle, BundleSpec
from .cancel import CancelToken
from .device import check_backend, resolve_device
from .memory import choose_batch_size
from .precision import check_precision, confirm_runner, resolve_precision
from .progress import ProgressCallback
from .runners import OnnxRunner, TorchRunner
from .slice_runner import restore_label, run_slices
from .training_range import check_input as check_training_range


@dataclass
class EngineOptions:
    """How to run a model.

    Attributes:
        device: "auto" (CUDA when usable), "cpu" or "cuda".
        precision: "auto" (default), "fp32" or "bf16". auto runs bf16 only where the bundle records a
            passing bf16 quality gate for this device type and the device has native bf16, else
            fp32 (rule and measurements: :mod:`.precision`); the loaded model says which and why.
        backend: "auto" (default), "torch" or "onnx" (ONNX Runtime, fp32 only: precision auto means
            fp32 there). auto: ONNX Runtime for a U-Net bundle on the CPU when the bundle has its ONNX
            file, onnxruntime is installed and precision is auto or fp32 (the same labels, and no
            MONAI to import: about 2.5 s less per cold run); torch for everything else.
        batch_size: slices per batch; None picks the largest that fits ``memory_budget_mb``, at most
            the runner's preferred batch (on the CPU: 4 slices per slice worker).
        memory_budget_mb: memory the run may use; None = a quarter of free RAM (max 4 GiB) on
            CPU, half of free GPU memory on CUDA.
        threads: CPU threads for torch/ONNX Runtime; None keeps the library default.
        force: run even when an input looks like the wrong modality (e.g. a CT given as MRI).
    """

    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    batch_size: Optional[int] = None
    memory_budget_mb: Optional[float] = None
    threads: Optional[int] = None
    force: bool = False

    def __post_init__(self) -> None:
        """Refuse sizes that mean nothing, with one sentence (ConfigError)."""
        if self.batch_size is not None and (int(self.batch_size) != self.batch_size or self.batch_size < 1):
            raise ConfigError(f"The batch size (--batch-size) must be a whole number of slices, at least 1, not "
                              f"{self.batch_size}; leave it out to pick the largest that fits the memory budget.")
        if self.threads is not None and (int(self.threads) != self.threads or self.threads < 1):
            raise ConfigError(f"The number of CPU threads (--threads) must be a whole number, at least 1, not "
                              f"{self.threads}; leave it out for the library default.")
        if self.memory_budget_mb is not None and not (np.isfinite(self.memory_budget_mb) and self.memory_budget_mb > 0):
            raise ConfigError(f"The memory budget (--memory-budget) must be a positive number of MB, not "
                              f"{self.memory_budget_mb:g}; leave it out for the default (1/4 of free RAM up to 4 GiB).")


@dataclass
class LoadedModel:
    """A bundle with its network ready to run.

    ``precision`` is the precision actually used ("fp32" or "bf16", ``options.precision`` resolved)
    and ``precision_reason`` says why, in a few words.
    """

    bundle: Bundle
    options: EngineOptions
    device: str
    runner: object
    grid_spec: ModelGridSpec
    weights_bytes: int
    precision: str = "fp32"
    precision_reason: str = ""

    @property
    def contract(self) -> BundleSpec:
        """The bundle's typed spec."""
        return self.bundle.contract

    @property
    def spec(self) -> dict:
        """The spec's JSON (a copy), as :attr:`Bundle.spec`."""
        return self.bundle.spec

    @property
    def input_names(self) -> List[str]:
        return self.contract.input_names

    @property
    def input_sequences(self) -> List[str]:
        return self.contract.input_sequences


@dataclass
class EngineResult:
    """The output volume (on the input's exact grid) and what happened on the way."""

    image: sitk.Image
    warnings: List[str] = field(default_factory=list)
    timings_s: Dict[str, float] = field(default_factory=dict)
    batch_size: int = 0
    device: str = "cpu"
    slices: int = 0
    precision: str = "fp32"


def load_model(bundle: Bundle, options: Optional[EngineOptions] = None) -> LoadedModel:
    """Build the bundle's network and load its verified weights (or open its ONNX file).

    ``options.precision`` "auto" is resolved here, from the bundle's spec and the resolved device.
    """
    options = options or EngineOptions()
    check_precision(options.precision)
    check_backend(options.backend)
    device = resolve_device(options.device)
    spec = bundle.contract
    spec.require_runnable()
    grid_spec = spec.grid_spec()
    weights = bundle.file("weights.pt")
    weights_bytes = os.path.getsize(weights)
    backend = resolve_backend(options.backend, spec, device, options.precision)
    choice = resolve_precision(options.precision, device, spec.raw, backend)
    if backend == "onnx":
        runner = OnnxRunner(bundle.file("model.onnx"), device, choice.precision, options.threads)
    else:
        import torch

        from ..networks import build_network

        net = build_network(spec.network_config(), init=False)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - any failure here means an unusable bundle
            raise InputError(f"Model bundle {bundle.id}: its weights do not fit its network ({str(exc)[:160]}).") from None
        runner = TorchRunner(net, device, choice.precision, options.threads)
        confirmed = confirm_runner(choice, options.precision, device, spec.raw, runner.path)
        if confirmed != choice:
            runner = TorchRunner(net, device, confirmed.precision, options.threads)
            choice = confirmed
    return LoadedModel(bundle, options, device, runner, grid_spec, weights_bytes, choice.precision, choice.reason)


def resolve_backend(backend: str, spec: BundleSpec, device: str, precision: str) -> str:
    """The backend ``backend`` means for this bundle ("auto": see :class:`EngineOptions`)."""
    if backend != "auto":
        return backend
    import importlib.util

    if (spec.network_config().kind == "unet" and device == "cpu" and precision in ("auto", "fp32")
            and "model.onnx" in spec.files and importlib.util.find_spec("onnxruntime") is not None):
        return "onnx"
    return "torch"


def _as_model(model: Union[LoadedModel, Bundle], options: Optional[EngineOptions]) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_model(model, options)


def _check_inputs(model: LoadedModel, images: Sequence[sitk.Image], force: bool) -> List[str]:
    spec_inputs = model.contract.inputs
    if len(images) != len(spec_inputs):
        wanted = ", ".join(model.input_sequences)
        raise InputError(
            f"Model {model.bundle.id} takes {len(spec_inputs)} input(s) ({wanted}) but {len(images)} "
            f"{'was' if len(images) == 1 else 'were'} given; give them in that order."
        )
    warnings = []
    for img, meta in zip(images, spec_inputs):
        if not isinstance(img, sitk.Image) or img.GetDimension() != 3:
            continue  # prepare() gives the precise message
        check_volume(img, meta.sequence)  # an empty or constant volume is not "an MRI"
        msg = warn_if_modality_mismatch(img, meta.modality)
        if msg:
            if not force:
                raise InputError(f"{meta.sequence}: {msg} Pass --force to run anyway.")
            warnings.append(msg)
    return warnings


def _run_network(
    model: LoadedModel,
    images: Sequence[sitk.Image],
    stage: str,
    restore: Callable[[Prepared, np.ndarray], sitk.Image],
    progress: Optional[ProgressCallback],
    cancel: Optional[CancelToken],
    sources: Optional[Sequence[Optional[str]]] = None,
) -> EngineResult:
    """Prepare ``images``, run the network over the slices, and ``restore`` its (C_out, Z, H, W)
    output onto the grid of ``images[0]``."""
    opts = model.options
    timings: Dict[str, float] = {}
    warnings = _check_inputs(model, images, opts.force)
    modality = model.contract.input_modality
    t0 = time.perf_counter()
    if progress:
        progress("prepare", 0, 1)
    prepared = prepare(list(images), model.grid_spec, modality=modality, names=model.input_sequences)
    # the input against what the model was trained on (spec "training_range"), on the normalised model grid
    warnings = warnings + check_training_range(model.contract, prepared, images, sources)
    timings["prepare"] = time.perf_counter() - t0
    if progress:
        progress("prepare", 1, 1)
    if cancel:
        cancel.check()
    c, z, h, w = prepared.array.shape
    budget = None if opts.memory_budget_mb is None else int(opts.memory_budget_mb * 1024 * 1024)
    batch = choose_batch_size(model.contract.network, (c, z, h, w), model.weights_bytes, model.device,
                              budget, opts.batch_size)
    preferred = model.runner.preferred_batch()
    if preferred and not opts.batch_size:  # the runner's own best batch: progress and cancel every few slices
        batch = min(batch, preferred)
    t0 = time.perf_counter()
    out = run_slices(model.runner, prepared.array, batch, progress, cancel, stage)  # (C_out, Z, H, W)
    timings[stage] = time.perf_counter() - t0
    t0 = time.perf_counter()
    image = restore(prepared, out)
    timings["restore"] = time.perf_counter() - t0
    if progress:
        progress("restore", 1, 1)
    return EngineResult(image, list(dict.fromkeys(warnings + list(prepared.warnings))), timings, batch, model.device, out.shape[1],
                        model.precision)


def synthesize(
    model: Union[LoadedModel, Bundle],
    images: Sequence[sitk.Image],
    options: Optional[EngineOptions] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelToken] = None,
    sources: Optional[Sequence[Optional[str]]] = None,
) -> EngineResult:
    """Synthetic CT from MRI channels, or synthetic MRI from a CT, by the bundle's direction.

    Args:
        model: a loaded model or a verified bundle.
        images: the input volumes in the order of the bundle's ``inputs``.
        sources: the files ``images`` were read from (same order), or None; the training-range
            check (:mod:`.training_range`) tells a phantom case by them.

    Returns:
        :class:`EngineResult` whose ``image`` (Float32; HU for CT) has exactly the size, origin,
        spacing and direction of ``images[0]``.
    """
    model = _as_model(model, options)
    direction = model.contract.direction
    if not direction.is_synthesis:
        raise InputError(f"Model {model.bundle.id} is a {direction} model, not a synthesis model; use 'segment'.")
    output = model.contract.output.modality
    return _run_network(model, images, "synthesize",
                        lambda prepared, out: prepared.restore(out[0], kind="image", output=output),
                        progress, cancel, sources)


def segment(
    model: Union[LoadedModel, Bundle],
    images: Sequence[sitk.Image],
    options: Optional[EngineOptions] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelToken] = None,
    sources: Optional[Sequence[Optional[str]]] = None,
) -> EngineResult:
    """Liver label map (uint8: 0 background, 1 liver) on the exact grid of ``images[0]``; ``sources`` as
    for :func:`synthesize`. The label is taken from the class probabilities resampled onto that grid
    (:func:`.slice_runner.restore_label`), not resampled as a label."""
    model = _as_model(model, options)
    if not model.contract.direction.is_label_output:
        raise InputError(f"Model {model.bundle.id} is a {model.contract.direction} model, not a segmentation model.")
    return _run_network(model, images, "segment", restore_label, progress, cancel, sources)


__all__ = ["EngineOptions", "EngineResult", "LoadedModel", "load_model", "synthesize", "segment", "ConfigError"]
