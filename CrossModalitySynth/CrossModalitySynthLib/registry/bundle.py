"""The model bundle: ``spec.json`` + files, every file checked against its sha256 before use.

``spec.json`` is the model contract: its keys and every check of them are in :mod:`.spec`
(:class:`~.spec.BundleSpec`). ``spec_sha256`` is the sha256 of the rest of the spec (canonical JSON:
sorted keys, no spaces), so the sha256 of a bundle covers ``spec.json`` itself; :func:`load_bundle`
checks it with the files, before every run, for every kind of bundle (shipped, downloaded,
imported, a folder), and then types the verified JSON.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List

from ..errors import InputError
from .spec import FORMAT_VERSION, SPEC_NAME, BundleSpec, Direction, InputSpec, check_format_version

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
    """A verified bundle on disk: its folder and its typed spec (:class:`~.spec.BundleSpec`)."""

    path: str
    contract: BundleSpec

    @property
    def spec(self) -> Dict[str, Any]:
        """The spec's JSON as on disk (a copy): for writing a changed spec, and free-form records."""
        return self.contract.to_dict()

    @property
    def id(self) -> str:
        return self.contract.id

    @property
    def version(self) -> str:
        return self.contract.version

    @property
    def direction(self) -> Direction:
        return self.contract.direction

    @property
    def inputs(self) -> List[InputSpec]:
        return list(self.contract.inputs)

    def file(self, name: str) -> str:
        """Absolute path of one of the bundle's listed files."""
        if name not in self.contract.files:
            raise InputError(f"Model bundle {self.path} has no file '{name}'; it lists {sorted(self.contract.files)}.")
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


def _read_json(folder: str) -> Dict[str, Any]:
    path = os.path.join(folder, SPEC_NAME)
    if not os.path.isfile(path):
        raise InputError(f"{folder} is not a model bundle: it has no {SPEC_NAME}.")
    try:
        with open(path) as f:
            spec = json.load(f)
    except (OSError, ValueError) as exc:
        raise InputError(f"Model bundle {folder}: {SPEC_NAME} is not valid JSON ({exc}).") from None
    if not isinstance(spec, dict):
        raise InputError(f"Model bundle {path}: the spec must be a JSON object; export the bundle again.")
    return spec


def _where(folder: str) -> str:
    return f"Model bundle {os.path.join(folder, SPEC_NAME)}"


def read_spec(folder: str) -> BundleSpec:
    """The typed spec of the bundle in ``folder`` for listing it: not verified against its sha256,
    its grid spec not parsed (that needs numpy); InputError when it breaks the contract."""
    return BundleSpec.from_dict(_read_json(folder), _where(folder), grid=False)


def load_bundle(folder: str, verify: bool = True) -> Bundle:
    """Read and (by default) verify a bundle: spec.json matches its ``spec_sha256`` and every listed
    file exists with its size and sha256.

    Raises InputError naming spec.json or the first file that is missing or does not match, and
    saying to fetch or import the bundle again.
    """
    folder = os.path.abspath(folder)
    raw = _read_json(folder)
    if not verify:
        return Bundle(folder, BundleSpec.from_dict(raw, _where(folder)))
    check_format_version(raw, _where(folder))  # a newer format: "update the extension", not "modified"
    name = raw.get("id") if isinstance(raw.get("id"), str) else folder
    if "spec_sha256" not in raw:
        raise InputError(f"Model bundle {name} has no spec_sha256, so its {SPEC_NAME} cannot be checked; "
                         "export it again with this version (or fetch or import it again).")
    try:
        digest = spec_digest(raw)
    except ValueError:  # NaN or infinity in the JSON: not what write_bundle_spec wrote
        digest = None
    if digest != raw["spec_sha256"]:
        raise InputError(f"Model bundle {name} was modified: its {SPEC_NAME} does not match its sha256 "
                         "(spec_sha256); fetch or import it again, or export it again.")
    spec = BundleSpec.from_dict(raw, _where(folder))  # the verified JSON, typed and checked
    for rel, meta in sorted(spec.files.items()):
        full = os.path.join(folder, rel)
        if not os.path.isfile(full):
            raise InputError(f"Model bundle {spec.id} is incomplete: {rel} is missing; fetch or import it again.")
        if os.path.getsize(full) != meta.get("size", os.path.getsize(full)) or sha256_of(full) != meta["sha256"]:
            raise InputError(
                f"Model bundle {spec.id} is corrupt or was modified: {rel} does not match its sha256; "
                "fetch or import it again."
            )
    return Bundle(folder, spec)
