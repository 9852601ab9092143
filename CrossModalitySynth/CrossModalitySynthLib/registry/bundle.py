"""The model bundle: ``spec.json`` + files, every file checked against its sha256 before use.

``spec.json`` keys (what depends on the model reads them; nothing is hard-coded beside them):

- ``format_version`` (int), ``id``, ``version``, ``description``, ``licence``
- ``direction``: ``"MR->CT"``, ``"CT->MR"`` or ``"MR->LIVER"`` (segmentation)
- ``inputs``: list of ``{"name", "modality", "sequence"}``, one per input channel, in order
- ``output``: e.g. ``{"modality": "CT", "unit": "HU", "range": [-1024, 3071]}``
- ``network``: the network configuration, ``preprocessing``: the model-grid spec
- ``training``: what data it was trained on, for how long; ``metrics``: validation figures
- ``training_range`` (optional): what the training data looked like (spacing range, body size,
  normalised body-intensity histogram per input, whether phantom-only), recorded at export and
  compared with every input at run time; see :mod:`CrossModalitySynthLib.inference.training_range`
- ``files``: ``{relative name: {"sha256": hex, "size": bytes}}``
- ``spec_sha256``: sha256 of the rest of the spec (canonical JSON: sorted keys, no spaces), so
  the sha256 of a bundle covers ``spec.json`` itself; :func:`load_bundle` checks it with the
  files, before every run, for every kind of bundle (shipped, downloaded, imported, a folder)
"""

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List

from ..errors import InputError

SPEC_NAME = "spec.json"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "id", "version", "direction", "inputs", "output", "files")
DIRECTIONS = ("MR->CT", "CT->MR", "MR->LIVER")
#: the newest ``training_range`` record this version reads (inference.training_range.VERSION)
TRAINING_RANGE_VERSION = 1


def sha256_of(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


@dataclass
class Bundle:
    """A verified bundle on disk."""

    path: str
    spec: Dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec["id"]

    @property
    def version(self) -> str:
        return self.spec["version"]

    @property
    def direction(self) -> str:
        return self.spec["direction"]

    @property
    def inputs(self) -> List[Dict[str, str]]:
        return self.spec["inputs"]

    def file(self, name: str) -> str:
        """Absolute path of one of the bundle's listed files."""
        if name not in self.spec["files"]:
            raise InputError(f"Model bundle {self.path} has no file '{name}'; it lists {sorted(self.spec['files'])}.")
        return os.path.join(self.path, name)


def spec_digest(spec: Dict[str, Any]) -> str:
    """sha256 of ``spec`` without its ``spec_sha256`` key, as canonical JSON (sorted keys, no spaces)."""
    rest = {k: v for k, v in spec.items() if k != "spec_sha256"}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def write_bundle_spec(folder: str, spec: Dict[str, Any]) -> str:
    """Fill ``spec['files']`` with the sha256 and size of every file in ``folder``, ``spec['spec_sha256']``
    with :func:`spec_digest`, and write spec.json.

    Returns the spec path. Used by the training export and by tests.
    """
    files = {}
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            if rel == SPEC_NAME or rel.startswith("."):
                continue
            files[rel] = {"sha256": sha256_of(full), "size": os.path.getsize(full)}
    spec = dict(spec)
    spec.setdefault("format_version", FORMAT_VERSION)
    spec["files"] = files
    spec["spec_sha256"] = spec_digest(spec)
    path = os.path.join(folder, SPEC_NAME)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(spec, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def read_spec(folder: str) -> Dict[str, Any]:
    path = os.path.join(folder, SPEC_NAME)
    if not os.path.isfile(path):
        raise InputError(f"{folder} is not a model bundle: it has no {SPEC_NAME}.")
    try:
        with open(path) as f:
            spec = json.load(f)
    except (OSError, ValueError) as exc:
        raise InputError(f"Model bundle {folder}: {SPEC_NAME} is not valid JSON ({exc}).") from None
    missing = [k for k in REQUIRED_KEYS if k not in spec]
    if missing:
        raise InputError(f"Model bundle {folder}: {SPEC_NAME} lacks {', '.join(missing)}.")
    if spec["format_version"] > FORMAT_VERSION:
        raise InputError(
            f"Model bundle {folder} has format {spec['format_version']}; this version of CrossModalitySynth "
            f"reads up to {FORMAT_VERSION}: update the extension."
        )
    if spec["direction"] not in DIRECTIONS:
        raise InputError(f"Model bundle {folder}: unknown direction {spec['direction']!r}; expected one of {DIRECTIONS}.")
    if "training_range" in spec:
        check_training_range(spec["training_range"], [i.get("name") for i in spec["inputs"]
                                                      if isinstance(i, dict)], f"Model bundle {folder}")
    return spec


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_pair(value: Any, what: str, where: str) -> None:
    if not (isinstance(value, list) and len(value) == 2 and all(_is_number(v) and v > 0 for v in value)
            and value[0] <= value[1]):
        raise InputError(f"{where}: training_range {what} must be [low, high] positive numbers, not {value!r}; "
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


def load_bundle(folder: str, verify: bool = True) -> Bundle:
    """Read and (by default) verify a bundle: spec.json matches its ``spec_sha256`` and every listed
    file exists with its size and sha256.

    Raises InputError naming spec.json or the first file that is missing or does not match, and
    saying to fetch or import the bundle again.
    """
    folder = os.path.abspath(folder)
    spec = read_spec(folder)
    if verify:
        if "spec_sha256" not in spec:
            raise InputError(f"Model bundle {spec['id']} has no spec_sha256, so its {SPEC_NAME} cannot be checked; "
                             "export it again with this version (or fetch or import it again).")
        if spec_digest(spec) != spec["spec_sha256"]:
            raise InputError(f"Model bundle {spec['id']} was modified: its {SPEC_NAME} does not match its sha256 "
                             "(spec_sha256); fetch or import it again, or export it again.")
        for rel, meta in sorted(spec["files"].items()):
            full = os.path.join(folder, rel)
            if not os.path.isfile(full):
                raise InputError(f"Model bundle {spec['id']} is incomplete: {rel} is missing; fetch or import it again.")
            if os.path.getsize(full) != meta.get("size", os.path.getsize(full)) or sha256_of(full) != meta["sha256"]:
                raise InputError(
                    f"Model bundle {spec['id']} is corrupt or was modified: {rel} does not match its sha256; "
                    "fetch or import it again."
                )
    return Bundle(folder, spec)
