"""Options and helpers shared by the commands that run models (synthesize, segment, run)."""

import contextlib
import json
import os
import signal
import sys
import threading
from typing import List, Optional

from ..errors import ConfigError
from ..inference import CancelToken, EngineOptions, Progress, load_model
from ..io import read_volume
from ..io.guard import refuse_input_as_output
from ..io.writer import check_output_path
from ..inference.device import BACKENDS, DEVICES
from ..inference.precision import PRECISIONS
from ..registry import Registry


def add_engine_arguments(p) -> None:
    g = p.add_argument_group("how to run the model")
    g.add_argument("--device", choices=DEVICES, default="auto", help="auto: the GPU when usable, else the CPU (default auto)")
    g.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default): bf16 only where the model bundle records a passing bf16 quality gate "
                        "(mean |sCT difference| vs fp32 < 1 HU, 99th percentile < 5 HU on phantom cases) measured "
                        "on this device type and the device has native bf16 (AMX/AVX512-BF16 CPU, bf16 GPU), "
                        "else fp32; fp32; bf16 (faster, may differ from fp32 by more than the gate). "
                        "The precision used and why are printed and written to summary.json")
    g.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto (default: ONNX Runtime for a liver U-Net on the CPU, which needs no MONAI; torch "
                        "otherwise), torch, or onnx (ONNX Runtime, fp32)")
    g.add_argument("--batch-size", type=int, help="slices per batch, at least 1 (default: the largest that fits the memory budget; "
                   "on the CPU at most 4 per thread); progress and cancel come between batches")
    g.add_argument("--memory-budget", type=float, metavar="MB",
                   help="memory the run may use, in MB, more than 0 (default: 1/4 of free RAM up to 4 GiB; 1/2 of free GPU memory)")
    g.add_argument("--threads", type=int, help="CPU threads, at least 1 (default: the library default); with 2 or more, slices run side "
                   "by side on worker threads, one thread each")
    g.add_argument("--force", action="store_true",
                   help="run even if an input looks like the wrong modality (e.g. a CT given to an MRI -> CT model)")
    g.add_argument("--progress", choices=("bar", "json", "none"), default="bar",
                   help="bar: a progress bar on stderr; json: one JSON object per line on stdout (for the Slicer "
                        "module); none")
    g.add_argument("--registry", help="model registry file (default: the extension's Models.json)")


def add_series_argument(p) -> None:
    """``--series`` for commands whose INPUTs may be DICOM folders (see :func:`series_for_inputs`)."""
    p.add_argument("--series", action="append", metavar="ID",
                   help="which series to read from a DICOM folder INPUT holding several: the id 'cmsynth info FOLDER' "
                        "lists (a series without a SeriesInstanceUID is nouid-N), or its SeriesInstanceUID or "
                        "SeriesDescription. Given once, it applies to every DICOM folder INPUT; to read different "
                        "series (e.g. T1 in- and opposed-phase from one folder) give it once per INPUT, in INPUT "
                        "order, with - for an INPUT that needs none")


def series_for_inputs(args) -> List[Optional[str]]:
    """The ``--series`` value for each INPUT (None: none given, or ``-``)."""
    given = list(getattr(args, "series", None) or [])
    inputs = list(args.inputs)
    if not given:
        return [None] * len(inputs)
    if len(given) == 1 and len(inputs) > 1:
        return [given[0] if os.path.isdir(p) else None for p in inputs]
    if len(given) != len(inputs):
        raise ConfigError(
            f"--series was given {len(given)} times for {len(inputs)} INPUTs; give it once (for every DICOM folder "
            "INPUT) or once per INPUT in INPUT order, with - for an INPUT that needs none."
        )
    return [None if v.strip() == "-" else v for v in given]


def engine_options(args) -> EngineOptions:
    return EngineOptions(device=args.device, precision=args.precision, backend=args.backend,
                         batch_size=args.batch_size, memory_budget_mb=args.memory_budget,
                         threads=args.threads, force=args.force)


#: the worker's models, kept between requests (None: every command loads its own; ``cmsynth worker``
#: sets it), and what it adds to each request's final event
_MODEL_CACHE = None
_RESULT_EXTRA: dict = {}


def use_model_cache(cache, extra: Optional[dict] = None) -> None:
    """Load models through ``cache`` (a :class:`~..inference.model_cache.ModelCache`) from now on."""
    global _MODEL_CACHE, _RESULT_EXTRA
    _MODEL_CACHE, _RESULT_EXTRA = cache, dict(extra or {})


def load_bundle(args, bundle):
    """Load a verified bundle with the command's engine options (through the worker's cache)."""
    if _MODEL_CACHE is not None:
        return _MODEL_CACHE.get(bundle, engine_options(args))
    return load_model(bundle, engine_options(args))


def load(args, model_id: str):
    """Resolve a model id (or a bundle folder) through the registry, verify it, load it."""
    return load_bundle(args, Registry(args.registry).resolve(model_id))


def make_progress(args) -> Progress:
    return Progress(args.progress)


def emit_result(args, payload: dict) -> None:
    """The final line: JSON in --progress json mode (the Slicer module reads it), else nothing."""
    if args.progress == "json":
        extra = dict(_RESULT_EXTRA)
        if _MODEL_CACHE is not None:
            extra["models_already_loaded"] = list(_MODEL_CACHE.reused)
        print(json.dumps({"stage": "done", **extra, **payload}), flush=True)


class SignalCancel(CancelToken):
    """A CancelToken set by SIGINT/SIGTERM. Before the write phase the work stops at the next batch;
    inside :meth:`writing` a signal stops at once (KeyboardInterrupt): the temporary file is removed
    and the output is not written."""

    def __init__(self) -> None:
        super().__init__()
        self.in_write_phase = False

    @contextlib.contextmanager
    def writing(self):
        self.in_write_phase = True
        try:
            self.check()
            yield
        finally:
            self.in_write_phase = False


@contextlib.contextmanager
def cancel_on_signals():
    """A :class:`SignalCancel` set by SIGINT/SIGTERM; the work stops at the next batch, writing nothing.

    A second signal, or any signal in the write phase, interrupts at once (KeyboardInterrupt).
    Handlers are restored afterwards.
    """
    token = SignalCancel()
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if token.cancelled or token.in_write_phase:
            token.cancel()
            if token.in_write_phase:
                print(f"cmsynth: {name} received while writing; stopping now, the output is not written.",
                      file=sys.stderr, flush=True)
            raise KeyboardInterrupt
        token.cancel()
        print(f"cmsynth: {name} received, stopping after the current batch...", file=sys.stderr, flush=True)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield token
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_engine_command(args, engine_fn, write_fn) -> int:
    """The flow shared by ``synthesize`` and ``segment``: check the output, load the model and the
    inputs, run ``engine_fn(model, images, progress=, cancel=)`` under signal-driven cancel, then
    ``write_fn(result_image, out_path, overwrite)``; report warnings and the result."""
    refuse_input_as_output(args.out, args.inputs)
    check_output_path(args.out, args.overwrite)  # fail before any heavy work
    series = series_for_inputs(args)
    model = load(args, args.model)
    images = [read_volume(p, series=s) for p, s in zip(args.inputs, series)]
    progress = make_progress(args)
    with cancel_on_signals() as token:
        try:
            res = engine_fn(model, images, progress=progress, cancel=token, sources=list(args.inputs))
            with token.writing():
                progress("write", 0, 1)
                write_fn(res.image, args.out, args.overwrite)
                progress("write", 1, 1)
        finally:
            progress.close()
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    emit_result(args, {"output": args.out, "timings_s": res.timings_s, "warnings": res.warnings,
                       "precision": model.precision, "precision_reason": model.precision_reason})
    if args.progress != "json":
        print(f"wrote {args.out} ({res.slices} slices, batch {res.batch_size}, {res.device}, {model.precision}, "
              f"{sum(res.timings_s.values()):.1f} s)")
        print(f"precision {model.precision}: {model.precision_reason}")
    return 0
