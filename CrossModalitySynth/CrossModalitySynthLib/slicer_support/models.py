"""What the model selector shows, and the Models section's actions (thin over the registry).

A :class:`ModelInfo` holds what a user must see before running a model: description, inputs
(MRI sequences or CT), what data it was trained on, licence, whether it is installed, and the
"research use only" statement. Fetching downloads the registry's zip with its sha256 checked
(:meth:`CrossModalitySynthLib.registry.Registry.fetch`, progress reported as bytes); "Import model
bundle..." installs a zip from disk (offline sites); "Clear downloaded models" removes every
fetched or imported bundle from the per-user cache (bundled demo models stay).
"""

import html
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from ..errors import InputError
from ..registry.spec import BundleSpec, Direction

RESEARCH_USE = "Research use only: not for diagnosis or treatment decisions."

# MRI sequence / modality (spec "sequence") -> the module's input selector for it
SEQUENCE_SLOTS: Dict[str, str] = {
    "T1 in-phase": "t1In",
    "T1 opposed-phase": "t1Opp",
    "T2": "t2",
    "CT": "ct",
}
DIRECTION_LABELS = {Direction.MR_TO_CT.value: "MRI -> CT", Direction.CT_TO_MR.value: "CT -> MRI",
                    Direction.MR_TO_LIVER.value: "liver segmentation (MRI)"}


@dataclass
class ModelInfo:
    id: str
    version: str
    direction: str
    inputs: List[str]  #: sequences in input order (e.g. ["T1 in-phase", "T1 opposed-phase"])
    input_names: List[str]  #: the spec's input names (e.g. ["t1_in", "t1_opp"]); empty if not installed
    description: str = ""
    licence: str = ""
    training: str = ""
    source: str = "registry"  #: registry (downloadable), bundled, local (imported)
    installed: bool = False
    location: str = ""
    size: Optional[int] = None
    extra: Dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        state = "" if self.installed else " (not downloaded)"
        return f"{self.id} {self.version}{state}"

    @property
    def slots(self) -> List[str]:
        """The module's input selectors this model needs (see :data:`SEQUENCE_SLOTS`)."""
        return [SEQUENCE_SLOTS[s] for s in self.inputs if s in SEQUENCE_SLOTS]


def training_text(spec: BundleSpec) -> str:
    """One readable sentence on what a bundle was trained on, from its spec's ``training`` block."""
    t = spec.training
    if not t:
        return "not stated in the bundle"
    data = t.get("data")
    if isinstance(data, dict):
        bits = []
        for k in sorted(data, key=lambda k: (k != "dataset", k)):
            v = data[k]
            if k == "root" or isinstance(v, dict):
                continue  # a folder on the trainer's computer says nothing to the user
            if isinstance(v, list):
                v = ", ".join(map(str, v)) if len(v) <= 4 else f"{len(v)}"
            bits.append(f"{k}: {v}")
        data_text = ", ".join(bits) if bits else "unspecified data"
    else:
        data_text = str(data) if data else "unspecified data"
    parts = [data_text]
    if t.get("epochs_done") is not None:
        parts.append(f"{t['epochs_done']} epochs")
    if t.get("device"):
        parts.append(f"on {t['device']}")
    if t.get("width_note"):
        parts.append(str(t["width_note"]))
    return "; ".join(parts)


def _info_from_row(row: dict) -> ModelInfo:
    from ..registry.bundle import read_spec

    spec = None
    if row.get("installed") and row.get("location"):
        try:
            spec = read_spec(row["location"])
        except InputError:
            spec = None
    return ModelInfo(
        id=row["id"], version=str(row.get("version", "")), direction=row.get("direction", ""),
        inputs=list(row.get("inputs") or []),
        input_names=spec.input_names if spec else [],
        description=row.get("description") or (spec.description if spec else ""),
        licence=row.get("licence") or (spec.licence if spec else ""),
        training=training_text(spec) if spec else "shown once the model is downloaded",
        source=row.get("source", "registry"), installed=bool(row.get("installed")),
        location=row.get("location", ""), size=row.get("size"),
    )


def list_models(registry: Optional[str] = None, direction: Optional[str] = None) -> List[ModelInfo]:
    """Every known model (registry, bundled, imported), optionally of one direction."""
    from ..registry import Registry

    rows = Registry(registry).as_dicts()
    infos = [_info_from_row(r) for r in rows]
    if direction:
        infos = [i for i in infos if i.direction == direction]
    return infos


def describe(info: ModelInfo) -> str:
    """The model card shown under the selector (simple HTML for a QLabel)."""
    def esc(s):
        return html.escape(str(s))

    inputs = " + ".join(info.inputs) or "-"
    size = f", {info.size / 1e6:.1f} MB" if info.size else ""
    state = "installed" if info.installed else f"not downloaded yet (use Fetch{size})"
    return (
        f"<b>{esc(info.id)}</b> {esc(info.version)} &mdash; {esc(DIRECTION_LABELS.get(info.direction, info.direction))}<br>"
        f"{esc(info.description or 'No description.')}<br>"
        f"<b>Inputs:</b> {esc(inputs)}<br>"
        f"<b>Trained on:</b> {esc(info.training)}<br>"
        f"<b>Licence:</b> {esc(info.licence or 'not stated')} &nbsp; <b>Status:</b> {esc(state)}<br>"
        f"<b>{esc(RESEARCH_USE)}</b>"
    )


def fetch(model_id: str, progress: Optional[Callable[[int, Optional[int]], None]] = None,
          registry: Optional[str] = None):
    """Download (if needed), verify by sha256 and install a model; returns the bundle."""
    from ..registry import Registry

    return Registry(registry).fetch(model_id, progress=progress, show_bar=False)


def import_zip(path: str, registry: Optional[str] = None):
    """Install a bundle zip from disk (offline sites); returns the bundle."""
    from ..registry import Registry

    return Registry(registry).import_zip(path)


def clear_downloaded(registry: Optional[str] = None) -> List[str]:
    """Remove every fetched or imported model from the cache; returns the removed folders.

    Bundled models (shipped with the extension) are not touched.
    """
    from ..registry import Registry

    reg = Registry(registry)
    removed: List[str] = []
    for entry in reg.entries():
        if entry.source == "bundled" or not reg.is_installed(entry):
            continue
        removed += reg.remove(entry.id)
    return removed


def cache_location() -> str:
    """Where fetched and imported models are kept (``CMSYNTH_HOME`` overrides it)."""
    from ..registry.cache import models_dir

    return models_dir()


class FetchTask:
    """Fetch one or more models in a background thread; the GUI polls :attr:`fraction`/:attr:`finished`.

    Only the download runs in the thread (no Qt, no MRML); the registry writes into the cache
    through a staging folder, so an interrupted fetch leaves nothing half-installed.
    """

    def __init__(self, model_ids, registry: Optional[str] = None):
        self.model_ids = [m for m in model_ids if m]
        self.registry = registry
        self.fraction = 0.0
        self.text = "starting..."
        self.error = ""
        self.finished = False
        self.bundles: List = []
        self._thread = None

    def start(self) -> "FetchTask":
        import threading

        self._thread = threading.Thread(target=self._run, daemon=True, name="cmsynth-fetch")
        self._thread.start()
        return self

    def _run(self) -> None:
        from ..errors import CMSynthError

        n = max(1, len(self.model_ids))
        try:
            for k, model_id in enumerate(self.model_ids):
                def progress(done, total, k=k, model_id=model_id):
                    part = (done / total) if total else 0.0
                    self.fraction = (k + min(1.0, part)) / n
                    mb = f"{done / 1e6:.1f}" + (f" / {total / 1e6:.1f}" if total else "")
                    self.text = f"{model_id}: {mb} MB"

                self.text = f"{model_id}: checking"
                self.bundles.append(fetch(model_id, progress=progress, registry=self.registry))
                self.fraction = (k + 1) / n
            self.text = "done"
        except CMSynthError as exc:
            self.error = str(exc)
        except Exception as exc:  # network stack errors not wrapped by the registry
            self.error = f"The model could not be fetched: {exc}"
        finally:
            self.finished = True

    def wait(self, timeout: Optional[float] = None) -> "FetchTask":
        if self._thread is not None:
            self._thread.join(timeout)
        return self
