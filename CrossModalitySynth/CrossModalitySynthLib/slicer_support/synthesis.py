"""One synthesis run from the Slicer module: input nodes -> ``run`` request to the session's
``cmsynth worker`` -> output nodes.

This is the compute path of the module's Logic, without Qt::

    worker = CmsynthWorker(env=child_environment())   # one per session, owned by the Logic
    job = SynthesisJob(SynthesisRequest(model="demo-t1dual-to-ct", inputs={"t1_in": n1, "t1_opp": n2},
                                        liver_model="demo-liver-unet-t1in"), scene, worker=worker)
    job.start()                 # exports the inputs, sends the request; the scene is not touched
    job.poll()                  # from a GUI timer: progress events; imports the results at the end
    job.cancel()                # kills the worker's process tree at once (the next job starts a new one)
    result = job.wait()         # scripts and tests: poll until done

The request holds the options of ``cmsynth run`` (:func:`~.process.run_args`); the worker keeps
the models loaded, so a second Apply does not load them again (:attr:`SynthesisResult.models_already_loaded`). A job given no
worker starts one of its own and stops it when it ends.

The scene is changed only when the process has succeeded, in :meth:`SynthesisJob.poll`, on the
thread that polls (the GUI thread). The import runs inside a :class:`~.scene.SceneSnapshot`: if it
fails, the scene is rolled back. A cancelled or failed run therefore leaves the scene exactly as
it was (same nodes, the picked output nodes with their old content), and nodes the user adds while
the run is going are never touched. The temporary folder (exported inputs, outputs) is deleted in
every case.
"""

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from ..errors import CMSynthError, InputError
from ..registry.spec import BundleSpec, Direction
from .process import (CANCELLED, FAILED, RUNNING, SUCCEEDED, ProgressEvent, child_environment, python_executable,
                      run_args)
from .worker import CmsynthWorker, WorkerRequest

DEVICE_CHOICES = {"auto": "auto", "cpu": "cpu", "gpu": "cuda", "cuda": "cuda"}


@dataclass
class SynthesisRequest:
    """What to run.

    :param model: synthesis model id (registry) or bundle folder.
    :param inputs: the model's input names (``BundleSpec.input_names``, e.g. ``t1_in``) -> volume node.
    :param liver_model: liver model id or bundle folder, or None.
    :param output_volume: an existing scalar volume node to fill, or None (a node is created).
    :param output_segmentation: an existing segmentation node to fill, or None.
    :param device: ``auto``, ``cpu`` or ``gpu``/``cuda``; :param precision: ``auto`` (bf16 only where the
        bundle records a passing bf16 gate for the device), ``fp32`` or ``bf16``.
    """

    model: str
    inputs: Dict[str, object]
    liver_model: Optional[str] = None
    output_volume: Optional[object] = None
    output_segmentation: Optional[object] = None
    device: str = "auto"
    precision: str = "auto"
    batch_size: Optional[int] = None
    threads: Optional[int] = None
    registry: Optional[str] = None
    force: bool = False


@dataclass
class SynthesisResult:
    status: str  #: SUCCEEDED, FAILED or CANCELLED
    message: str = ""
    volume_node: Optional[object] = None
    segmentation_node: Optional[object] = None
    summary: Optional[dict] = None
    liver_voxels: Optional[int] = None
    seconds: float = 0.0
    stderr_tail: List[str] = field(default_factory=list)
    models_already_loaded: List[str] = field(default_factory=list)  #: models the worker had loaded before


def resolve_model(model: str, registry: Optional[str] = None):
    """The verified bundle of a model id or folder (raises the registry's one-line InputError)."""
    from ..registry import Registry

    return Registry(registry).resolve(model)


def ordered_inputs(spec: BundleSpec, inputs: Dict[str, object]) -> List[tuple]:
    """[(input name, node)] in the model's input order; a clear error for a missing one."""
    out = []
    for entry in spec.inputs:
        name = entry.name
        node = inputs.get(name)
        if node is None:
            raise InputError(
                f"Model {spec.id} needs a {entry.sequence} volume; select one in the Inputs section."
            )
        out.append((name, node))
    return out


def refuse_repeated_inputs(spec: BundleSpec, pairs: List[tuple]) -> None:
    """One volume given for two of the model's inputs (T1 in-phase as opposed-phase too) is refused."""
    sequences = dict(zip(spec.input_names, spec.input_sequences))
    seen = {}
    for name, node in pairs:
        key = node.GetID() if hasattr(node, "GetID") else id(node)
        if key in seen:
            raise InputError(f"'{node.GetName()}' is selected as both {sequences[seen[key]]} and {sequences[name]}; "
                             "select a different volume for each input.")
        seen[key] = name


class SynthesisJob:
    """A synthesis run polled by the caller (see the module docstring).

    :param request: what to run.
    :param scene: the MRML scene the nodes belong to.
    :param python: interpreter for the child (default: :func:`~.process.python_executable`).
    :param workdir: parent folder of the run's temporary folder (default: the system's).
    :param env_base: the environment the child starts from; inside Slicer,
        ``slicer.util.startupEnvironment()`` (Slicer's own start-up environment, without what
        Slicer added for itself); default: this process's environment. Only for a job's own worker.
    :param worker: the session's :class:`~.worker.CmsynthWorker`; None: the job starts its own and
        stops it at the end.
    """

    def __init__(self, request: SynthesisRequest, scene, python: Optional[str] = None,
                 workdir: Optional[str] = None, env_base: Optional[Dict[str, str]] = None,
                 worker: Optional[CmsynthWorker] = None):
        self.request = request
        self.env_base = env_base
        self.scene = scene
        self.python = python or python_executable()
        self.workdir = workdir
        self.worker = worker
        self._own_worker = worker is None
        self.process: Optional[WorkerRequest] = None  #: the request to the worker (``.pid``: the worker's)
        self.result: Optional[SynthesisResult] = None
        self.last_progress: Optional[ProgressEvent] = None
        self._tmp: Optional[str] = None
        self._t0 = 0.0
        self._first_node = None
        self._reference = None
        self._output_modality = "CT"

    # ---- state -----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        if self.result is not None:
            return self.result.status
        return RUNNING if self.process is not None else "idle"

    @property
    def running(self) -> bool:
        return self.process is not None and self.result is None

    # ---- start -----------------------------------------------------------------------------
    def start(self) -> "SynthesisJob":
        """Check the request, export the inputs and start the process.

        Raises :class:`~CrossModalitySynthLib.errors.CMSynthError` (one sentence) when the request
        cannot run; the scene is never modified here.
        """
        if self.process is not None:
            raise RuntimeError("this job was already started")
        if self.worker is not None and self.worker.busy:
            raise InputError("A synthesis is still running; wait for it to finish or cancel it.")
        req = self.request
        self._t0 = time.monotonic()
        bundle = resolve_model(req.model, req.registry)
        if not bundle.direction.is_synthesis:
            raise InputError(f"Model {bundle.id} is a {bundle.direction} model, not a synthesis model; pick another.")
        self._output_modality = bundle.contract.output.modality
        liver = None
        if req.liver_model:
            liver = resolve_model(req.liver_model, req.registry)
            if liver.direction != Direction.MR_TO_LIVER:
                raise InputError(f"Model {liver.id} is not a liver segmentation model; pick another or none.")
            if bundle.direction != Direction.MR_TO_CT:
                raise InputError("The liver is segmented from the MRI: use a liver model only with an MRI -> CT model.")
        pairs = ordered_inputs(bundle.contract, req.inputs)
        nodes = [n for _, n in pairs]
        refuse_repeated_inputs(bundle.contract, pairs)
        for out in (req.output_volume, req.output_segmentation):
            if out is not None and any(out is n or out.GetID() == n.GetID() for n in nodes):
                raise InputError(f"'{out.GetName()}' is an input; pick another output node or let one be created.")
        if req.output_volume is not None and not req.output_volume.IsA("vtkMRMLScalarVolumeNode"):
            raise InputError("The synthetic volume output must be a scalar volume node.")
        if req.output_volume is not None and req.output_volume.IsA("vtkMRMLLabelMapVolumeNode"):
            raise InputError("The synthetic volume output must be a scalar volume, not a label map.")
        if req.output_segmentation is not None and not req.output_segmentation.IsA("vtkMRMLSegmentationNode"):
            raise InputError("The liver output must be a segmentation node.")
        device = DEVICE_CHOICES.get(str(req.device).lower())
        if device is None:
            raise InputError(f"Unknown device '{req.device}'; use auto, CPU or GPU.")

        self._tmp = tempfile.mkdtemp(prefix="cmsynth-slicer-", dir=self.workdir)
        try:
            paths = _export(pairs, os.path.join(self._tmp, "inputs"))
            from ..io import read_volume

            self._first_node = nodes[0]
            self._reference = read_volume(paths[0])  # the grid every result must lie on
            carry_phantom_case(nodes, paths)
            args = run_args(bundle.path, paths, os.path.join(self._tmp, "out"),
                            liver_model=liver.path if liver is not None else None,
                            device=device, precision=req.precision, batch_size=req.batch_size,
                            threads=req.threads, registry=req.registry, force=req.force)
            if self.worker is None:
                self.worker = CmsynthWorker(self.python, env=child_environment(self.env_base))
            self.process = self.worker.submit("run", args)
        except BaseException:
            self._cleanup()
            raise
        return self

    # ---- follow ----------------------------------------------------------------------------
    def poll(self) -> List[ProgressEvent]:
        """Progress since the last call; at the end, imports (success) or cleans up (otherwise)."""
        if self.process is None or self.result is not None:
            return []
        events = self.process.poll()
        if events:
            self.last_progress = events[-1]
        outcome = self.process.outcome
        if outcome is None:
            return events
        try:
            if outcome.status == SUCCEEDED:
                self.result = self._import(outcome.result or {})
                self.result.models_already_loaded = self.process.models_already_loaded
            else:
                self.result = SynthesisResult(outcome.status, outcome.message, stderr_tail=outcome.stderr_tail)
        finally:
            if self.result is None:
                self.result = SynthesisResult(FAILED, "The results could not be loaded into the scene.")
            self.result.seconds = round(time.monotonic() - self._t0, 3)
            self._cleanup()
        return events

    def _import(self, final: dict) -> SynthesisResult:
        from .scene import SceneSnapshot, import_results

        req = self.request
        snapshot = SceneSnapshot(self.scene, keep=[req.output_volume, req.output_segmentation])
        try:
            imported = import_results(os.path.join(self._tmp, "out"), final.get("summary") or {}, self._first_node,
                                      self._reference, self._output_modality, volume_node=req.output_volume,
                                      segmentation_node=req.output_segmentation, scene=self.scene)
        except CMSynthError as exc:
            snapshot.rollback()
            return SynthesisResult(FAILED, str(exc))
        except Exception as exc:  # an unexpected error while importing: the scene goes back as it was
            snapshot.rollback()
            return SynthesisResult(FAILED, f"The results could not be loaded into the scene: {exc}")
        return SynthesisResult(SUCCEEDED, "", imported.volume_node, imported.segmentation_node,
                               final.get("summary"), imported.liver_voxels)

    def cancel(self) -> None:
        """Kill the worker's process tree at once; :meth:`poll` then reports CANCELLED and the scene
        is unchanged. The worker's next request starts a new worker."""
        if self.process is not None and self.result is None:
            self.process.cancel()

    def abort(self, timeout: float = 10.0) -> None:
        """Kill the worker's process tree now and wait for it, then delete the temporary folder.

        For the module's ``cleanup()`` (Slicer closing, or the module reloading): the result is
        CANCELLED and the scene is not touched.
        """
        if self.process is None or self.result is not None:
            self._cleanup()
            return
        self.process.kill()
        deadline = time.monotonic() + timeout
        while self.result is None and time.monotonic() < deadline:
            self.poll()
            if self.result is None:
                time.sleep(0.02)
        self._cleanup()

    def wait(self, timeout: Optional[float] = None, interval: float = 0.05,
             on_progress: Optional[Callable[[ProgressEvent], None]] = None) -> SynthesisResult:
        """Poll until finished (scripts and tests; the GUI polls from a timer)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for event in self.poll():
                if on_progress is not None:
                    on_progress(event)
            if self.result is not None:
                return self.result
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                raise TimeoutError(f"the synthesis did not finish within {timeout} s; it was cancelled")
            time.sleep(interval)

    def _cleanup(self) -> None:
        if self._tmp and os.path.isdir(self._tmp):
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None
        if self._own_worker and self.worker is not None:
            self.worker.stop()


def carry_phantom_case(nodes, paths: List[str]) -> bool:
    """Copy a phantom case's ``case.json`` beside the exported inputs when every input node holds,
    unchanged since it was read, a volume of that one ``cmsynth phantom`` case folder.

    The run's training-range check tells a phantom case by the ``case.json`` beside its files
    (:func:`~CrossModalitySynthLib.inference.training_range.is_phantom_case_file`); the exported
    copies would lose it. A node edited in Slicer, or loaded from elsewhere, is not carried over.
    Returns whether it was copied.
    """
    from ..inference.training_range import is_phantom_case_file
    from ..io import read_volume

    folders = set()
    for node, path in zip(nodes, paths):
        storage = node.GetStorageNode() if hasattr(node, "GetStorageNode") else None
        source = storage.GetFileName() if storage is not None else None
        if not source or node.GetModifiedSinceRead() or not is_phantom_case_file(source, read_volume(path)):
            return False
        folders.add(os.path.dirname(os.path.abspath(source)))
    if len(folders) != 1:
        return False
    shutil.copyfile(os.path.join(folders.pop(), "case.json"), os.path.join(os.path.dirname(paths[0]), "case.json"))
    return True


def _export(pairs, folder) -> List[str]:
    from .scene import export_inputs

    return export_inputs([n for _, n in pairs], folder, [name for name, _ in pairs])


__all__ = ["SynthesisRequest", "SynthesisResult", "SynthesisJob", "ordered_inputs", "resolve_model",
           "SUCCEEDED", "FAILED", "CANCELLED"]
