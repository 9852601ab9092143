"""Model bundles and the model registry.

A *bundle* is a folder holding ``spec.json`` plus the files it lists (weights, ONNX export),
each with its sha256; :func:`load_bundle` verifies them before anything is used. The *registry*
(``Resources/Models.json``) lists the bundles users can fetch or that ship with the extension;
fetched and imported bundles live in a per-user cache outside the install tree. The spec's
contract (:class:`BundleSpec`, :class:`Direction`) is in :mod:`.spec`.
"""

from .bundle import Bundle, load_bundle, write_bundle_spec, sha256_of, spec_digest
from .cache import cache_dir
from .registry import Registry, RegistryEntry
from .spec import BundleSpec, Direction, InputSpec, OutputSpec

__all__ = [
    "Bundle",
    "BundleSpec",
    "Direction",
    "InputSpec",
    "OutputSpec",
    "load_bundle",
    "write_bundle_spec",
    "sha256_of",
    "spec_digest",
    "cache_dir",
    "Registry",
    "RegistryEntry",
]
