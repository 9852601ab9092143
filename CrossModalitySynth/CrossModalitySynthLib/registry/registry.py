"""The model registry: ``Resources/Models.json`` lists bundles; installed ones live in the cache.

``Models.json``::

    {"models": [{"id": ..., "version": ..., "direction": "MR->CT", "inputs": ["T1 in-phase", ...],
                 "url": "https://.../bundle.zip" | "path": "Models/<folder>",
                 "sha256": ..., "size": ..., "licence": ..., "description": ...}]}

``url`` entries are zip files whose sha256 and size are given; ``path`` entries are bundle
folders shipped with the extension (relative to Models.json) and ``sha256`` is that of their
``spec.json``, which in turn pins every file of the bundle. Bundles imported from a zip that the
registry does not list are kept as local models and listed too.
"""

import json
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from ..errors import ConfigError, InputError
from .bundle import SPEC_NAME, Bundle, load_bundle, read_spec, sha256_of
from .cache import models_dir
from .download import ProgressFn, download

#: The extension's registry, beside the library (Slicer install, source checkout, editable install).
DEFAULT_REGISTRY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "Resources", "Models.json")
#: Where a wheel install puts the same Resources folder (pyproject's data-files).
INSTALLED_REGISTRY = os.path.join(sys.prefix, "share", "crossmodalitysynth", "Resources", "Models.json")


def default_registry_file() -> str:
    """The registry beside the library when it is there, else the one a wheel installed."""
    if not os.path.isfile(DEFAULT_REGISTRY) and os.path.isfile(INSTALLED_REGISTRY):
        return INSTALLED_REGISTRY
    return DEFAULT_REGISTRY


@dataclass
class RegistryEntry:
    id: str
    version: str
    direction: str
    inputs: List[str] = field(default_factory=list)
    url: Optional[str] = None
    path: Optional[str] = None
    sha256: Optional[str] = None
    size: Optional[int] = None
    licence: str = ""
    description: str = ""
    source: str = "registry"  # "registry", "bundled" or "local" (imported, not in the registry)

    @classmethod
    def from_dict(cls, d: dict, registry_file: str) -> "RegistryEntry":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{registry_file}: unknown key(s) {unknown} in the entry for {d.get('id')!r}.")
        for key in ("id", "version", "direction"):
            if key not in d:
                raise ConfigError(f"{registry_file}: an entry lacks '{key}'.")
        if bool(d.get("url")) == bool(d.get("path")):
            raise ConfigError(f"{registry_file}: entry {d['id']!r} needs exactly one of 'url' or 'path'.")
        entry = cls(**d)
        if entry.path:
            entry.source = "bundled"
        return entry


class Registry:
    """Lists, fetches, verifies, imports and removes model bundles."""

    def __init__(self, registry_file: Optional[str] = None, root: Optional[str] = None):
        self.registry_file = os.path.abspath(registry_file or os.environ.get("CMSYNTH_REGISTRY") or default_registry_file())
        self.root = os.path.abspath(root or models_dir())
        self._entries = self._read()

    # ---- reading ------------------------------------------------------------------------
    def _read(self) -> Dict[str, RegistryEntry]:
        if not os.path.isfile(self.registry_file):
            raise ConfigError(f"Model registry {self.registry_file} not found; reinstall the extension or pass --registry.")
        try:
            with open(self.registry_file) as f:
                data = json.load(f)
        except ValueError as exc:
            raise ConfigError(f"Model registry {self.registry_file} is not valid JSON ({exc}).") from None
        entries = {}
        for d in data.get("models", []):
            e = RegistryEntry.from_dict(d, self.registry_file)
            if e.id in entries:
                raise ConfigError(f"{self.registry_file}: model id {e.id!r} is listed twice.")
            entries[e.id] = e
        return entries

    def entries(self) -> List[RegistryEntry]:
        """Registry entries plus locally imported bundles the registry does not list."""
        out = list(self._entries.values())
        if os.path.isdir(self.root):
            for mid in sorted(os.listdir(self.root)):
                if mid in self._entries or mid.startswith("."):
                    continue
                for version in sorted(os.listdir(os.path.join(self.root, mid))):
                    try:
                        spec = read_spec(os.path.join(self.root, mid, version))
                    except InputError:
                        continue
                    out.append(RegistryEntry(
                        id=mid, version=version, direction=spec.direction.value, inputs=spec.input_sequences,
                        licence=spec.licence, description=spec.description,
                        source="local",
                    ))
        return out

    def get(self, model_id: str) -> RegistryEntry:
        for e in self.entries():
            if e.id == model_id:
                return e
        known = ", ".join(sorted(e.id for e in self.entries())) or "none"
        raise InputError(f"Unknown model '{model_id}'; known models: {known} (see 'cmsynth models list').")

    def installed_path(self, entry: RegistryEntry) -> str:
        if entry.path:
            return os.path.normpath(os.path.join(os.path.dirname(self.registry_file), entry.path))
        return os.path.join(self.root, entry.id, entry.version)

    def is_installed(self, entry: RegistryEntry) -> bool:
        return os.path.isfile(os.path.join(self.installed_path(entry), SPEC_NAME))

    def as_dicts(self) -> List[dict]:
        rows = []
        for e in self.entries():
            d = asdict(e)
            d["installed"] = self.is_installed(e)
            d["location"] = self.installed_path(e)
            rows.append(d)
        return rows

    # ---- using ----------------------------------------------------------------------------
    def resolve(self, model_id: str) -> Bundle:
        """The verified bundle for ``model_id``; a clear error if it is not installed or corrupt.

        ``model_id`` may also be a path to a bundle folder (for models outside any registry).
        """
        if os.path.isdir(model_id):
            return load_bundle(model_id)
        entry = self.get(model_id)
        if not self.is_installed(entry):
            raise InputError(
                f"Model '{model_id}' is not installed; run 'cmsynth models fetch {model_id}' "
                "or, offline, 'cmsynth models import BUNDLE.zip'."
            )
        return self.verify(model_id)

    def verify(self, model_id: str) -> Bundle:
        entry = self.get(model_id)
        path = self.installed_path(entry)
        if not self.is_installed(entry):
            raise InputError(f"Model '{model_id}' is not installed; nothing to verify.")
        if entry.source == "bundled" and entry.sha256:
            if sha256_of(os.path.join(path, SPEC_NAME)) != entry.sha256:
                raise InputError(
                    f"Bundled model '{model_id}' does not match the registry's checksum; reinstall the extension."
                )
        bundle = load_bundle(path, verify=True)
        if bundle.id != entry.id:
            raise InputError(f"Model folder {path} holds '{bundle.id}', not '{entry.id}'; remove it and fetch again.")
        return bundle

    def fetch(self, model_id: str, progress: Optional[ProgressFn] = None, show_bar: bool = True) -> Bundle:
        """Download (if needed), verify and install a registry model; returns the bundle."""
        entry = self.get(model_id)
        if entry.source != "registry" or self.is_installed(entry):
            return self.verify(model_id)
        if not entry.sha256:
            raise ConfigError(f"Registry entry {model_id!r} has a url but no sha256; refusing to download unverified.")
        os.makedirs(self.root, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".fetch-", dir=self.root)
        try:
            zip_path = download(entry.url, os.path.join(staging, "bundle.zip"), entry.sha256,
                                expected_size=entry.size, progress=progress, show_bar=show_bar)
            return self._install_zip(zip_path, expect=entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def import_zip(self, zip_path: str) -> Bundle:
        """Install a bundle zip from disk (offline sites). A zip for a registry model must be the
        released file (same sha256); any other bundle is installed as a local model."""
        if not os.path.isfile(zip_path):
            raise InputError(f"No such file: {zip_path}.")
        if not zipfile.is_zipfile(zip_path):
            raise InputError(f"{zip_path} is not a zip file; a model bundle is imported as the .zip it was released as.")
        return self._install_zip(zip_path, expect=None)

    def remove(self, model_id: str) -> List[str]:
        """Delete every cached version of ``model_id``; returns the removed folders."""
        entry = self.get(model_id)
        if entry.source == "bundled":
            raise InputError(f"Model '{model_id}' ships with the extension and cannot be removed.")
        folder = os.path.join(self.root, model_id)
        if not os.path.isdir(folder):
            raise InputError(f"Model '{model_id}' is not installed; nothing to remove.")
        removed = [os.path.join(folder, v) for v in sorted(os.listdir(folder))]
        shutil.rmtree(folder)
        return removed

    # ---- internals ------------------------------------------------------------------------
    def _install_zip(self, zip_path: str, expect: Optional[RegistryEntry]) -> Bundle:
        os.makedirs(self.root, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".import-", dir=self.root)
        try:
            try:
                with zipfile.ZipFile(zip_path) as zf:
                    for name in zf.namelist():
                        if name.startswith("/") or ".." in name.replace("\\", "/").split("/"):
                            raise InputError(f"{zip_path} contains an unsafe path ({name}); refusing to extract it.")
                    zf.extractall(staging)
            except zipfile.BadZipFile as exc:
                raise InputError(f"{zip_path} is a corrupt zip file ({exc}); download it again.") from None
            folder = _bundle_root(staging, zip_path)
            bundle = load_bundle(folder, verify=True)
            listed = self._entries.get(bundle.id)
            if expect is not None and (bundle.id, bundle.version) != (expect.id, expect.version):
                raise InputError(
                    f"The download for '{expect.id}' {expect.version} holds '{bundle.id}' {bundle.version}; "
                    "the registry entry is wrong."
                )
            if expect is None and listed is not None:
                if listed.source == "bundled":
                    raise InputError(f"Model '{bundle.id}' ships with the extension; there is nothing to import.")
                if listed.sha256 and sha256_of(zip_path) != listed.sha256:
                    raise InputError(
                        f"{zip_path} is not the released file for '{bundle.id}' (sha256 differs from the registry); "
                        "download it again from the release page."
                    )
            target = os.path.join(self.root, bundle.id, bundle.version)
            if os.path.exists(target):
                shutil.rmtree(target)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(folder, target)
            return load_bundle(target, verify=False)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _bundle_root(staging: str, zip_path: str) -> str:
    if os.path.isfile(os.path.join(staging, SPEC_NAME)):
        return staging
    subs = [d for d in os.listdir(staging) if os.path.isdir(os.path.join(staging, d))]
    if len(subs) == 1 and os.path.isfile(os.path.join(staging, subs[0], SPEC_NAME)):
        return os.path.join(staging, subs[0])
    raise InputError(f"{zip_path} holds no model bundle ({SPEC_NAME} not found at its top level).")
