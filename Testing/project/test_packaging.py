"""A wheel (`pip install .`) carries the model registry and the bundled demo models, and an
installed library outside the source tree finds and verifies them."""

import json
import os
import shutil
import subprocess
import sys
import venv

import pytest
from testsupport.paths import REPO_DIR

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

ROOT = REPO_DIR
RESOURCES = os.path.join(ROOT, "CrossModalitySynth", "Resources")


def _bundled_paths():
    with open(os.path.join(RESOURCES, "Models.json")) as f:
        return [m["path"] for m in json.load(f)["models"] if m.get("path")]


@pytest.mark.skipif(tomllib is None, reason="needs tomllib (Python 3.11+)")
def test_every_bundled_model_is_in_the_wheel_data_files():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        data_files = tomllib.load(f)["tool"]["setuptools"]["data-files"]
    for path in _bundled_paths():
        key = "share/crossmodalitysynth/Resources/" + path
        assert data_files.get(key) == [f"CrossModalitySynth/Resources/{path}/*"], (
            f"pyproject.toml [tool.setuptools.data-files] lacks the bundled model {path}")


@pytest.mark.slow
def test_wheel_install_finds_its_registry_and_models(tmp_path):
    # build from a copy: setuptools writes build/ and *.egg-info into the tree it builds
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "runs")
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(os.path.join(ROOT, name), src / name)
    for name in ("CrossModalitySynth", "training"):
        shutil.copytree(os.path.join(ROOT, name), src / name, ignore=skip)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(src)], check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = list(wheels.glob("crossmodalitysynth-*.whl"))

    # a fresh environment whose only copy of the library is the installed wheel, installed by that
    # environment's own pip (ours would uninstall our editable install first); the dependencies come
    # from our environment through a .pth file written after the install
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True, cwd=tmp_path)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
    with open(os.path.join(site, "zz_test_dependencies.pth"), "w") as f:
        f.write("\n".join(ours) + "\n")

    code = (
        "import json, CrossModalitySynthLib, sys\n"
        "from CrossModalitySynthLib.registry import Registry\n"
        "r = Registry()\n"
        "b = r.resolve('demo-t1dual-to-ct')\n"
        "import importlib.util, cmsynth_training.config\n"
        "print(json.dumps({'lib': CrossModalitySynthLib.__file__, 'registry': r.registry_file, 'bundle': b.path,"
        " 'ids': sorted(e.id for e in r.entries()), 'training': cmsynth_training.config.__file__,"
        " 'bare_training': importlib.util.find_spec('training') is not None}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CMSYNTH_REGISTRY")}
    env["CMSYNTH_HOME"] = str(tmp_path / "home")
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["lib"].startswith(str(env_dir)), got["lib"]  # the wheel's copy, not the checkout
    share = os.path.join(str(env_dir), "share", "crossmodalitysynth", "Resources")
    assert got["registry"] == os.path.join(share, "Models.json")
    assert got["bundle"].startswith(share)
    assert got["ids"] == sorted(os.path.basename(p) for p in _bundled_paths())
    # the training package is installed under the project's own name only
    assert got["training"].startswith(str(env_dir)) and not got["bare_training"]
    # and our own environment still has its editable install (the test must not touch it)
    ours_now = subprocess.run([sys.executable, "-c", "import CrossModalitySynthLib; print(CrossModalitySynthLib.__file__)"],
                              check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert ours_now.stdout.strip().startswith(ROOT)
