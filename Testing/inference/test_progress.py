"""The one progress helper (CrossModalitySynthLib.progress.Progress) behind every progress bar:
a tqdm bar only when its stream is a terminal, JSON lines for ``--progress json``, nothing
without tqdm; and the real ``cmsynth`` commands that draw bars (evaluate, reader-study create,
models fetch, run through a pseudo-terminal and through a pipe)."""

import fcntl
import hashlib
import io
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios

import pytest
from testsupport.bundles import make_test_bundle

from CrossModalitySynthLib.inference import Progress as EngineProgress
from CrossModalitySynthLib.phantom import write_cases
from CrossModalitySynthLib.progress import Progress

EXE = os.path.join(os.path.dirname(sys.executable), "cmsynth")


def _terminal():
    """(master, slave) of a pseudo-terminal 120 columns wide, as a terminal window is."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    return master, slave


def _drain(fd: int, wait: float = 0.2) -> bytes:
    """Everything readable on ``fd`` now (a pty master: EIO once the other side is closed)."""
    chunks = []
    while select.select([fd], [], [], wait)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def _feed(progress, calls):
    for call in calls:
        progress(*call)
    progress.close()


CALLS = [("prepare", 0, 1), ("prepare", 1, 1), ("synthesize", 0, 4), ("synthesize", 4, 4)]


def test_bar_on_a_terminal_names_each_stage_and_its_unit():
    master, slave = _terminal()
    with open(slave, "w", closefd=True) as term:
        assert term.isatty()
        _feed(EngineProgress("bar", stream=term), CALLS)
        term.flush()
        shown = _drain(master).decode()
    os.close(master)
    # one bar per stage, counted in steps, then in slices for the network stage
    assert "prepare:" in shown and "step/s" in shown
    assert "synthesize:" in shown and "0/4" in shown and "slice/s" in shown


def test_no_bar_when_the_stream_is_not_a_terminal():
    read_end, write_end = os.pipe()
    with open(write_end, "w") as piped:
        assert not piped.isatty()
        _feed(EngineProgress("bar", stream=piped), CALLS)
    with open(read_end, "rb") as f:
        assert f.read() == b""
    log = io.StringIO()  # a log file or captured stream: not a terminal either
    _feed(Progress("bar", stream=log, unit="volume"), CALLS)
    assert log.getvalue() == ""


def test_json_lines_one_per_call_flushed_with_fraction_and_elapsed_time():
    out = io.StringIO()
    _feed(EngineProgress("json", stream=out), CALLS + [("write", 0, 0)])
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["stage"], r["done"], r["total"]) for r in rows] == [c for c in CALLS] + [("write", 0, 0)]
    assert [r["fraction"] for r in rows] == [0.0, 1.0, 0.0, 1.0, 1.0]  # an empty stage counts as done
    assert all(set(r) == {"stage", "done", "total", "fraction", "elapsed_s"} for r in rows)
    assert all(b["elapsed_s"] >= a["elapsed_s"] >= 0 for a, b in zip(rows, rows[1:]))
    unknown = io.StringIO()
    Progress("json", stream=unknown)("download", 5, None)  # a download without a length
    row = json.loads(unknown.getvalue())
    assert (row["done"], row["total"], row["fraction"]) == (5, None, None)


def test_none_mode_and_a_bad_mode():
    master, slave = _terminal()
    with open(slave, "w") as term:
        _feed(Progress("none", stream=term), CALLS)
        term.flush()
        assert _drain(master) == b""
    os.close(master)
    with pytest.raises(ValueError, match="bar, json or none"):
        Progress("fancy")


def test_without_tqdm_there_is_no_bar_and_no_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # what an environment without tqdm gives: ImportError
    master, slave = _terminal()
    with open(slave, "w") as term:
        with Progress("bar", stream=term) as bar:
            bar("synthesize", 1, 2)
            bar("synthesize", 2, 2)
        term.flush()
        assert _drain(master) == b""
    os.close(master)


# ------------------------------------------------------------------ the commands that draw bars


def _run(argv, on_terminal, env=None):
    """Run ``cmsynth argv`` with stderr on a pseudo-terminal (or a pipe): (returncode, stdout, stderr)."""
    if not on_terminal:
        proc = subprocess.run([EXE] + argv, capture_output=True, env=env, stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    master, slave = _terminal()
    proc = subprocess.Popen([EXE] + argv, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    err = []
    while proc.poll() is None:
        err.append(_drain(master, 0.5))
    err.append(_drain(master))
    os.close(master)
    return proc.returncode, proc.stdout.read().decode(), b"".join(err).decode(errors="replace")


@pytest.fixture(scope="module")
def ct_sets(tmp_path_factory):
    """Two small phantom CTs as the real set, the same CTs swapped between patients as the synthetic set."""
    root = tmp_path_factory.mktemp("progress_cli")
    cases = write_cases(str(root / "phantom"), n_cases=2, seed=21, size="small")
    for name in ("real", "synthetic"):
        os.makedirs(root / name)
    for i, case in enumerate(cases):
        shutil.copy(os.path.join(case, "ct.nii.gz"), str(root / "real" / f"pat{i}.nii.gz"))
        shutil.copy(os.path.join(cases[1 - i], "ct.nii.gz"), str(root / "synthetic" / f"pat{i}.nii.gz"))
    return root


@pytest.mark.parametrize("on_terminal, extra, bar", [(True, [], True), (False, [], False),
                                                     (True, ["--no-progress"], False)])
def test_evaluate_bars(ct_sets, tmp_path, on_terminal, extra, bar):
    out = tmp_path / "eval"
    code, stdout, err = _run(["evaluate", "--real", str(ct_sets / "real"), "--synthetic", str(ct_sets / "synthetic"),
                              "--out", str(out)] + extra, on_terminal)
    assert code == 0, err
    assert os.path.isfile(out / "metrics.json")
    assert ("real volumes:" in err and "volume/s" in err) is bar, err
    assert ("volume/s" in err) is bar
    assert "warning: FID/KID use the 'histspec' features" in err  # the warnings come through either way


@pytest.mark.parametrize("on_terminal", [True, False])
def test_reader_study_create_bar(ct_sets, tmp_path, on_terminal):
    out = tmp_path / "study"
    code, stdout, err = _run(["reader-study", "create", "--real", str(ct_sets / "real"), "--synthetic",
                              str(ct_sets / "synthetic"), "--readers", "ann", "--trials-per-reader", "2",
                              "--slice-size", "48", "--slice-spacing", "6", "--out", str(out)], on_terminal)
    assert code == 0, err
    assert "study: " in stdout
    assert ("preparing images:" in err and "image/s" in err) is on_terminal, err


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A bundle zip behind a file:// address and a registry that lists it with its sha256 and size."""
    root = tmp_path_factory.mktemp("progress_fetch")
    make_test_bundle(str(root / "bundle"), inputs=("t1_in",), onnx=False, model_id="m-progress")
    zip_path = shutil.make_archive(str(root / "m-progress"), "zip", root_dir=str(root / "bundle"))
    with open(zip_path, "rb") as f:
        data = f.read()
    registry = root / "Models.json"
    registry.write_text(json.dumps({"models": [{
        "id": "m-progress", "version": "0.0.1", "direction": "MR->CT", "inputs": ["T1 in-phase"],
        "url": "file://" + zip_path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]}))
    return str(registry), len(data)


@pytest.mark.parametrize("on_terminal", [True, False])
def test_models_fetch_bar(released, tmp_path, on_terminal):
    registry, size = released
    env = dict(os.environ, CMSYNTH_HOME=str(tmp_path / "home"))
    code, stdout, err = _run(["models", "--registry", registry, "fetch", "m-progress"], on_terminal, env=env)
    assert code == 0, err
    assert "m-progress 0.0.1 installed and verified" in stdout
    # the finished bar stays on the terminal: the file name, 100 % and the size with its prefix
    assert ("bundle.zip: 100%" in err and "B/s" in err) is on_terminal, err
    if on_terminal:
        assert f"{size / 1000:.1f}k" in err or f"{size / 1000:.0f}k" in err, err
