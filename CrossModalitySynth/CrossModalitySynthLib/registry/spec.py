"""The model contract: a bundle's ``spec.json`` as a typed, checked object.

:class:`BundleSpec` (with :class:`InputSpec`, :class:`OutputSpec`, :class:`Direction`) holds every
check of a spec (the keys are listed in docs/models.md); what depends on a model reads it, as
:attr:`Bundle.contract <CrossModalitySynthLib.registry.bundle.Bundle.contract>`. A spec that breaks
the contract raises :class:`~CrossModalitySynthLib.errors.InputError`, one sentence naming the
file and the field: ``Model bundle /m/spec.json: inputs[1] has no 'name'; export the bundle again
(or fetch or import it again).`` Free-form records (``training``, ``metrics``, ``onnx``) and
unknown keys are kept as they are; :meth:`BundleSpec.to_dict` gives the whole JSON back.
"""

import copy
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..errors import ConfigError, InputError

SPEC_NAME = "spec.json"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "id", "version", "direction", "inputs", "output", "files")
#: the newest ``training_range`` record this version reads (inference.training_range.VERSION)
TRAINING_RANGE_VERSION = 1
INPUT_MODALITIES = ("MR", "CT")
OUTPUT_MODALITIES = ("CT", "MR", "LABEL")
AGAIN = "export the bundle again (or fetch or import it again)"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Direction(str, Enum):
    """What a model turns into what; the value is the spec's string (``Direction.MR_TO_CT == "MR->CT"``)."""

    MR_TO_CT = "MR->CT"
    CT_TO_MR = "CT->MR"
    MR_TO_LIVER = "MR->LIVER"

    def __str__(self) -> str:  # "MR->CT" in messages and f-strings on every Python version
        return self.value

    @property
    def input_modality(self) -> str:
        """"MR" or "CT": what every input of such a model is."""
        return "CT" if self is Direction.CT_TO_MR else "MR"

    @property
    def output_modality(self) -> str:
        """"CT", "MR" or "LABEL" (a label map)."""
        return {Direction.MR_TO_CT: "CT", Direction.CT_TO_MR: "MR"}.get(self, "LABEL")

    @property
    def is_label_output(self) -> bool:
        """True for segmentation models (their output is a label map)."""
        return self is Direction.MR_TO_LIVER

    @property
    def is_synthesis(self) -> bool:
        return not self.is_label_output

    @classmethod
    def synthesis(cls) -> Tuple["Direction", ...]:
        return tuple(d for d in cls if d.is_synthesis)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(where: str, what: str) -> InputError:
    return InputError(f"{where}: {what}; {AGAIN}.")


def _string(data: Mapping[str, Any], key: str, where: str, label: str, required: bool = True,
            default: str = "") -> str:
    if key not in data:
        if required:
            raise _fail(where, f"{label} has no {key!r}")
        return default
    value = data[key]
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(where, f"{label} {key!r} must be a non-empty string, not {_short(value)}")
    return value


@dataclass(frozen=True)
class InputSpec:
    """One input channel: ``name`` (e.g. "t1_in"), ``modality`` ("MR" or "CT"), ``sequence``
    (what a user reads, e.g. "T1 in-phase"; the name when not given)."""

    name: str
    modality: str
    sequence: str

    @classmethod
    def from_dict(cls, data: Any, where: str, label: str) -> "InputSpec":
        if not isinstance(data, dict):
            raise _fail(where, f"{label} must be a JSON object with 'name', 'modality' and 'sequence', not {_short(data)}")
        name = _string(data, "name", where, label)
        modality = _string(data, "modality", where, label)
        if modality not in INPUT_MODALITIES:
            raise _fail(where, f"{label} modality {modality!r} is unknown (use {' or '.join(INPUT_MODALITIES)})")
        return cls(name, modality, _string(data, "sequence", where, label, required=False, default=name) or name)


@dataclass(frozen=True)
class OutputSpec:
    """What the model makes: ``modality`` ("CT", "MR" or "LABEL") and, where given, ``unit``, the
    value ``range`` [low, high], ``labels`` ({"1": "liver"}), the output ``sequence`` and the MR
    ``sequences`` (input names of the sequences a CT->MR model makes)."""

    modality: str
    unit: str = ""
    range: Optional[Tuple[float, float]] = None
    labels: Dict[str, str] = field(default_factory=dict)
    sequence: str = ""
    sequences: Tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "OutputSpec":
        if not isinstance(data, dict):
            raise _fail(where, f"output must be a JSON object with a 'modality', not {_short(data)}")
        modality = _string(data, "modality", where, "output")
        if modality not in OUTPUT_MODALITIES:
            raise _fail(where, f"output modality {modality!r} is unknown (use {', '.join(OUTPUT_MODALITIES)})")
        rng = data.get("range")
        if rng is not None and not (isinstance(rng, list) and len(rng) == 2 and all(map(_is_number, rng))
                                    and rng[0] < rng[1]):
            raise _fail(where, f"output range must be [low, high] numbers with low < high, not {_short(rng)}")
        labels = data.get("labels", {})
        if not (isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())):
            raise _fail(where, f"output labels must map label values to names, not {_short(labels)}")
        sequences = data.get("sequences", [])
        if not (isinstance(sequences, list) and all(isinstance(s, str) for s in sequences)):
            raise _fail(where, f"output sequences must be a list of input names, not {_short(sequences)}")
        return cls(modality, _string(data, "unit", where, "output", required=False),
                   None if rng is None else (float(rng[0]), float(rng[1])), dict(labels),
                   _string(data, "sequence", where, "output", required=False), tuple(sequences))


@dataclass(frozen=True)
class BundleSpec:
    """A checked ``spec.json``; build it with :meth:`from_dict` (which raises the one-sentence
    InputError naming ``where`` and the field) and write it with :meth:`to_dict`.

    ``network`` and ``preprocessing`` are the raw JSON objects (None when the bundle cannot be run),
    typed by :meth:`network_config` (imports torch) and :meth:`grid_spec` (imports numpy and
    SimpleITK); ``training_range`` is the checked record (or None); ``onnx``, ``training`` and
    ``metrics`` are plain JSON objects ({} when absent).
    """

    where: str
    format_version: int
    id: str
    version: str
    direction: Direction
    inputs: Tuple[InputSpec, ...]
    output: OutputSpec
    files: Dict[str, Dict[str, Any]]
    description: str = ""
    licence: str = ""
    network: Optional[Dict[str, Any]] = None
    preprocessing: Optional[Dict[str, Any]] = None
    training_range: Optional[Dict[str, Any]] = None
    onnx: Dict[str, Any] = field(default_factory=dict)
    training: Dict[str, Any] = field(default_factory=dict)
    metrics: Dict[str, Any] = field(default_factory=dict)
    spec_sha256: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ reading

    @classmethod
    def from_dict(cls, data: Any, where: str, grid: bool = True) -> "BundleSpec":
        """Check ``data`` (the JSON of a spec.json) against the contract and type it.

        ``where`` names the file in messages (e.g. "Model bundle /m/spec.json"). ``grid=False``
        leaves out the check of ``preprocessing`` (:meth:`grid_spec`, which imports numpy), for
        listing bundles; the network's own keys are checked by :meth:`network_config` when it is built.
        """
        if not isinstance(data, dict):
            raise _fail(where, "the spec must be a JSON object")
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise _fail(where, f"the spec lacks {', '.join(missing)}")
        version = check_format_version(data, where)
        direction = parse_direction(data["direction"], where)
        inputs = _parse_inputs(data["inputs"], direction, where)
        output = OutputSpec.from_dict(data["output"], where)
        files = _parse_files(data["files"], where)
        network = data.get("network")
        if network is not None:
            if not (isinstance(network, dict) and isinstance(network.get("kind"), str)):
                raise _fail(where, "network must be a JSON object with a 'kind'")
            channels = network.get("in_channels", 1)
            if channels != len(inputs):
                raise _fail(where, f"network in_channels is {channels!r} but the spec lists {len(inputs)} input(s)")
        training_range = data.get("training_range")
        if training_range is not None:
            check_training_range(training_range, [i.name for i in inputs], where)
        for key in ("preprocessing", "onnx", "training", "metrics"):
            if not isinstance(data.get(key) or {}, dict):
                raise _fail(where, f"{key} must be a JSON object, not {_short(data[key])}")
        sha = data.get("spec_sha256")
        if sha is not None and not isinstance(sha, str):
            raise _fail(where, f"spec_sha256 must be a string, not {_short(sha)}")
        raw = copy.deepcopy(data)
        spec = cls(where, version, _string(data, "id", where, "the spec"), _string(data, "version", where, "the spec"),
                   direction, inputs, output, files,
                   _string(data, "description", where, "the spec", required=False),
                   _string(data, "licence", where, "the spec", required=False),
                   raw.get("network"), raw.get("preprocessing"), raw.get("training_range"),
                   raw.get("onnx") or {}, raw.get("training") or {}, raw.get("metrics") or {}, sha, raw)
        if grid and spec.preprocessing is not None:
            spec.grid_spec()
        return spec

    def to_dict(self) -> Dict[str, Any]:
        """The spec's JSON as read (every key, known or not), a copy to change and write."""
        return copy.deepcopy(self.raw)

    # ------------------------------------------------------------------ views

    @property
    def input_names(self) -> List[str]:
        return [i.name for i in self.inputs]

    @property
    def input_sequences(self) -> List[str]:
        return [i.sequence for i in self.inputs]

    @property
    def input_modality(self) -> str:
        return self.direction.input_modality

    def require_runnable(self) -> None:
        """InputError (one sentence) when the bundle has no network or no preprocessing."""
        for key in ("network", "preprocessing"):
            if getattr(self, key) is None:
                raise InputError(f"Model bundle {self.id} has no '{key}' in its spec; it cannot be run.")

    def grid_spec(self):
        """The ``ModelGridSpec`` of ``preprocessing``; InputError naming the file when it is invalid."""
        from ..preprocess.model_grid import ModelGridSpec  # numpy + SimpleITK, imported when used

        try:
            return ModelGridSpec.from_dict(self.preprocessing)
        except (ConfigError, TypeError, ValueError) as exc:  # "Model spec: ..." -> this file's sentence
            raise _fail(self.where, "preprocessing: " + _strip(exc)) from None

    def network_config(self):
        """The ``NetworkConfig`` of ``network`` (imports torch); InputError naming the file when it is invalid."""
        from ..networks import NetworkConfig

        try:
            return NetworkConfig.from_dict(self.network)
        except (ConfigError, TypeError, ValueError) as exc:  # NetworkConfigError: one sentence without the file
            raise _fail(self.where, "network: " + _strip(exc)) from None


def _strip(exc: Exception) -> str:
    text = str(exc).strip().rstrip(".")
    return text[len("Model spec: "):] if text.startswith("Model spec: ") else text


def check_format_version(data: Mapping[str, Any], where: str) -> int:
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(where, f"format_version must be a whole number >= 1, not {_short(version)}")
    if version > FORMAT_VERSION:
        raise InputError(f"{where} has format {version}; this version of CrossModalitySynth reads up to "
                         f"{FORMAT_VERSION}: update the extension.")
    return version


def parse_direction(value: Any, where: str) -> Direction:
    try:
        return Direction(value)
    except (ValueError, TypeError):
        raise _fail(where, f"direction {value!r} is unknown (use {', '.join(d.value for d in Direction)})") from None


def _parse_inputs(data: Any, direction: Direction, where: str) -> Tuple[InputSpec, ...]:
    if not isinstance(data, list) or not data:
        raise _fail(where, f"inputs must be a non-empty list of input channels, not {_short(data)}")
    inputs = tuple(InputSpec.from_dict(d, where, f"inputs[{k}]") for k, d in enumerate(data))
    for k, i in enumerate(inputs):
        if i.modality != direction.input_modality:
            raise _fail(where, f"inputs[{k}] is {i.modality} but a {direction} model takes {direction.input_modality}")
        if i.name in [j.name for j in inputs[:k]]:
            raise _fail(where, f"inputs[{k}] repeats the name {i.name!r}")
    return inputs


def _parse_files(data: Any, where: str) -> Dict[str, Dict[str, Any]]:
    if not isinstance(data, dict):
        raise _fail(where, "files must map file names to their sha256 and size")
    for name, meta in data.items():
        if not (isinstance(meta, dict) and isinstance(meta.get("sha256"), str) and _SHA256.match(meta["sha256"])):
            raise _fail(where, f"files[{name!r}] needs a 'sha256' of 64 hex digits")
        size = meta.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise _fail(where, f"files[{name!r}] size must be a whole number of bytes, not {_short(size)}")
    return copy.deepcopy(data)


# ------------------------------------------------------------------ training_range


def _check_pair(value: Any, what: str, where: str) -> None:
    if not (isinstance(value, list) and len(value) == 2 and all(_is_number(v) and v > 0 for v in value)
            and value[0] <= value[1]):
        raise InputError(f"{where}: training_range {what} must be [low, high] positive numbers, not {_short(value)}; "
                         "export the bundle again.")


def check_training_range(record: Any, input_names: List[str], where: str) -> None:
    """The form of a spec's optional ``training_range`` (InputError, one sentence, when malformed)."""
    if not isinstance(record, dict):
        raise InputError(f"{where}: training_range must be a JSON object; export the bundle again.")
    version = record.get("version", 1)
    if not isinstance(version, int) or version > TRAINING_RANGE_VERSION:
        raise InputError(f"{where}: training_range version {version!r} is newer than this version of "
                         f"CrossModalitySynth reads ({TRAINING_RANGE_VERSION}); update the extension.")
    spacing = record.get("spacing_mm")
    if not isinstance(spacing, dict):
        raise InputError(f"{where}: training_range lacks spacing_mm; export the bundle again.")
    for key in ("inplane", "through_plane"):
        _check_pair(spacing.get(key), f"spacing_mm.{key}", where)
    body = record.get("body_mm") or {}
    if not isinstance(body, dict):
        raise InputError(f"{where}: training_range body_mm must be a JSON object; export the bundle again.")
    for key, value in body.items():
        if value is not None:
            _check_pair(value, f"body_mm.{key}", where)
    channels = record.get("channels")
    names = [c.get("name") if isinstance(c, dict) else None for c in channels] if isinstance(channels, list) else None
    if names != list(input_names):
        raise InputError(f"{where}: training_range channels {names} must be the inputs {list(input_names)}, in order; "
                         "export the bundle again.")
    bins = record.get("bins", 40)
    for c in channels:
        hist = c.get("histogram")
        if not (isinstance(hist, list) and len(hist) == bins and all(_is_number(v) and v >= 0 for v in hist) and sum(hist) > 0
                and _is_number(c.get("threshold")) and c["threshold"] > 0):
            raise InputError(f"{where}: training_range channel {c.get('name')!r} needs a histogram of {bins!r} non-negative "
                             "numbers and a positive threshold; export the bundle again.")


__all__ = ["BundleSpec", "Direction", "InputSpec", "OutputSpec", "SPEC_NAME", "FORMAT_VERSION",
           "check_training_range"]
