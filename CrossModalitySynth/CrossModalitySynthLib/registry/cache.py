"""Where fetched and imported model bundles live: a per-user cache outside the install tree.

``CMSYNTH_HOME`` overrides the location; otherwise ``$XDG_CACHE_HOME/crossmodalitysynth`` or
``~/.cache/crossmodalitysynth`` (``%LOCALAPPDATA%\\CrossModalitySynth`` on Windows).
"""

import os


def cache_dir() -> str:
    env = os.environ.get("CMSYNTH_HOME")
    if env:
        return os.path.abspath(env)
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return os.path.join(os.environ["LOCALAPPDATA"], "CrossModalitySynth")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "crossmodalitysynth")


def models_dir() -> str:
    return os.path.join(cache_dir(), "models")
