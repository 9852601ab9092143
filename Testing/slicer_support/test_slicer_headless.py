"""The Slicer panel driven as a user drives it, in a headless Slicer, at both release tags.

Each scenario of :mod:`slicer_headless.scenarios` runs in its own Python process: the headless
Slicer owns ``sys.modules['qt']`` and replaces slicer-core's ``slicer.util`` with Slicer's own, so it
cannot share a process with the rest of the suite. What is real and what is a stand-in is listed in
:mod:`slicer_headless.environment`. Slicer's Python layer comes from ``../shared/slicer-reference``;
without it the tests skip, except on CI (``CI`` set), where they fail.
"""

import os
import subprocess
import sys

import pytest

from slicer_headless.environment import REPO, TAGS, reference_root
from slicer_headless.scenarios import SCENARIOS
from testsupport.paths import TESTING_DIR

HERE = TESTING_DIR


def _require_reference():
    missing = [t for t in TAGS if not os.path.isfile(os.path.join(reference_root(), t, "slicer", "util.py"))]
    if missing:
        message = f"Slicer's Python layer ({', '.join(missing)}) is missing under {reference_root()}"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the headless-Slicer tests")
        pytest.skip(message)


#: scenarios that need a case inside the demo models' training range (CHAOS size); the others run
#: on a small phantom case, which is faster
CHAOS_SIZE_SCENARIOS = ("status_line_names_training_range_warnings",)


@pytest.fixture(scope="module")
def phantom_case(tmp_path_factory):
    from CrossModalitySynthLib.phantom import write_cases

    return write_cases(str(tmp_path_factory.mktemp("headless_phantom")), n_cases=1, seed=0, size="small")[0]


@pytest.fixture(scope="module")
def chaos_case(tmp_path_factory):
    from CrossModalitySynthLib.phantom import write_cases

    return write_cases(str(tmp_path_factory.mktemp("headless_chaos")), n_cases=1, seed=9002, size="chaos")[0]


def _site_without(root, names):
    """A site folder holding this environment's packages except the distributions ``names``
    (their import packages and .dist-info folders): a Slicer Python where they are not installed."""
    import importlib.metadata as md

    hidden = set()
    for name in names:
        dist = md.distribution(name)
        for f in dist.files or []:
            top = str(f).split("/", 1)[0]
            if top != "..":
                hidden.add(top)
    site = os.path.join(root, "site")
    os.makedirs(site)
    for base in [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]:
        for entry in os.listdir(base):
            if entry in hidden or entry.endswith(".pth") or entry == "__pycache__":
                continue
            target = os.path.join(site, entry)
            if not os.path.exists(target):
                os.symlink(os.path.join(base, entry), target)
    return site


def _run(tag, name, tmp_path, case):
    _, _, without = SCENARIOS[name]
    env = dict(os.environ)
    paths = [HERE, os.path.join(REPO, "CrossModalitySynth")]
    argv = [sys.executable]
    if without:
        paths.append(_site_without(str(tmp_path), without))
        argv.append("-S")  # no site-packages: only the reduced site folder
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("CMSYNTH_HEADLESS_MARK", None)
    argv += ["-m", "slicer_headless.scenarios", tag, name, str(tmp_path / "slicer"), case]
    proc = subprocess.run(argv, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and f"SCENARIO PASSED {tag} {name}" in proc.stdout, \
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-12000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_panel_in_headless_slicer(tag, name, tmp_path, request):
    _require_reference()
    case = request.getfixturevalue("chaos_case" if name in CHAOS_SIZE_SCENARIOS else "phantom_case")
    _run(tag, name, tmp_path, case)


def test_reduced_site_really_lacks_monai(tmp_path):
    """The dependency scenarios' environment: monai and tqdm cannot be imported or found by pip."""
    site = _site_without(str(tmp_path), ("monai", "tqdm"))
    code = ("import importlib.metadata as md, importlib.util as u, sys\n"
            "assert u.find_spec('monai') is None and u.find_spec('tqdm') is None\n"
            "for n in ('monai', 'tqdm'):\n"
            "    try: md.version(n)\n"
            "    except md.PackageNotFoundError: pass\n"
            "    else: sys.exit(n + ' is visible')\n"
            "import numpy, vtk, slicer, packaging; print(md.version('torch'))")
    proc = subprocess.run([sys.executable, "-S", "-c", code], env=dict(os.environ, PYTHONPATH=site),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
