"""Building the package prints no setuptools deprecation warning about its licence (issue 13 item 17).

``license = { text = ... }`` made setuptools print "`project.license` as a TOML table is deprecated"
once per build hook, three times on ``make install``. The package is built here as pip builds it
(every hook: requirements, metadata, wheel), offline, from a copy of the files the build reads.
"""

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

from setuptools import __version__ as setuptools_version
from testsupport.paths import REPO_DIR

ROOT = REPO_DIR


def _version(text):
    """(major, minor) of "77", "77.0.1", "84.2.1" ..."""
    parts = [int(p) for p in text.split(".")[:2]]
    return tuple(parts + [0] * (2 - len(parts)))


def test_build_prints_no_licence_deprecation(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(os.path.join(ROOT, name), src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    # the data files pyproject lists must exist for the wheel; the code itself is not needed here
    shutil.copytree(os.path.join(ROOT, "CrossModalitySynth", "Resources"), src / "CrossModalitySynth" / "Resources",
                    ignore=skip)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-v",
         "-w", str(tmp_path / "wheels"), str(src)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    for text in ("project.license", "License classifiers are deprecated", "SetuptoolsDeprecationWarning"):
        assert text not in output, f"'{text}' printed while building:\n{output[-3000:]}"
    (wheel,) = (tmp_path / "wheels").glob("crossmodalitysynth-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_build_requirement_allows_the_licence_string():
    """An SPDX string in project.license needs setuptools 77; the isolated build `make install` runs
    must not pick an older one, and the setuptools here (used above) is new enough."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    assert isinstance(project["project"]["license"], str)
    requires = [r.replace(" ", "") for r in project["build-system"]["requires"]]
    setuptools_req = next(r for r in requires if r.startswith("setuptools"))
    assert setuptools_req.startswith("setuptools>=") and _version(setuptools_req.split(">=")[1]) >= (77, 0)
    assert _version(setuptools_version) >= (77, 0)
