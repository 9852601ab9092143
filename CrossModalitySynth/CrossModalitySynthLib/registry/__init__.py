"""Model bundles and the model registry.

A *bundle* is a folder holding ``spec.json`` plus the files it lists (weights, ONNX export),
each with its sha256; :func:`load_bundle` verifies them before anything is used. The *registry*
(``Resources/Models.json``) lists the bundles users can fetch or that ship with the extension;
fetched and imported bundles live in a per-user cache outside the install tree.
"""

from .bundle import Bundle, load_bundle, write_bundle_spec, sha256_of, spec_digest
from .cache import cache_dir
from .registry import Registry, RegistryEntry

__all__ = [
    "Bundle",
    "load_bundle",
    "write_bundle_spec",
    "sha256_of",
    "spec_digest",
    "cache_dir",
    "Registry",
    "RegistryEntry",
]
