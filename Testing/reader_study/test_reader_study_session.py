"""Reader sessions: answers on disk one by one, resume, finish, going back, crash safety."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.reader_study.prepare import PrepareSettings
from CrossModalitySynthLib.reader_study.design import sources_from_files
from CrossModalitySynthLib.reader_study.session import NotAllowedError, ReaderSession, SessionFinishedError
from CrossModalitySynthLib.reader_study.study import create_study
from testsupport.readers import write_dataset

N_TRIALS = 8
RECORD_KEYS = {
    "type", "study_id", "reader_id", "session", "trial_index", "image_id", "answer", "confidence", "comment",
    "response_time_s", "timestamp",
}


@pytest.fixture(scope="module")
def base_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("rs_session")
    data = write_dataset(str(root / "data"), 10, seed=7)
    sources = sources_from_files([data["real"]], [data["synthetic"]])
    study, key = create_study(
        str(root / "study"), sources, ["R01", "R02"], N_TRIALS, 0.5, seed=2,
        settings=PrepareSettings(slice_size=16, slice_spacing=4.0),
    )
    return study


@pytest.fixture
def study(base_study, tmp_path):
    return shutil.copytree(base_study, str(tmp_path / "study"))


def _allow_back(study_dir):
    path = os.path.join(study_dir, "study.json")
    with open(path) as f:
        data = json.load(f)
    data["allow_back"] = True
    with open(path, "w") as f:
        json.dump(data, f)


def _log_lines(study_dir, reader="R01"):
    with open(os.path.join(study_dir, "answers", reader + ".jsonl")) as f:
        return [json.loads(line) for line in f]


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_answers_are_logged_and_the_session_resumes(study):
    clock = FakeClock()
    s = ReaderSession(study, "R01", clock=clock)
    assert (s.n_trials, s.n_answered, s.position, s.sitting) == (N_TRIALS, 0, 1, 1)
    for k, (ans, conf) in enumerate([("real", 4), ("s", 2), ("synthetic", 5)], start=1):
        trial = s.start_trial()
        assert trial.index == k and trial.label == f"{k} / {N_TRIALS}" and os.path.isfile(trial.path)
        clock.t += 2.5 * k
        rec = s.answer(ans, conf, comment="edges" if k == 2 else None)
        assert rec["response_time_s"] == pytest.approx(2.5 * k)
    lines = _log_lines(study)
    assert len(lines) == 3 and all(set(rec) == RECORD_KEYS for rec in lines)
    assert [r["answer"] for r in lines] == ["real", "synthetic", "synthetic"]
    assert [r["trial_index"] for r in lines] == [1, 2, 3] and lines[1]["comment"] == "edges"
    assert all(r["session"] == 1 and r["type"] == "answer" and r["reader_id"] == "R01" for r in lines)

    again = ReaderSession(study, "R01")  # reopening resumes at the first unanswered trial
    assert (again.n_answered, again.position, again.sitting) == (3, 4, 2)
    assert again.current_trial.image_id == s.trials[3].image_id
    assert ReaderSession(study, "R02").position == 1  # other readers are independent


def test_the_response_time_counts_from_the_last_restart_of_the_clock(study):
    clock = FakeClock()
    s = ReaderSession(study, "R01", clock=clock)
    s.start_trial()
    clock.t += 30.0  # the trial was put on screen, but the reader's page connected only now
    s.restart_clock()
    clock.t += 4.0
    assert s.answer("real", 3)["response_time_s"] == pytest.approx(4.0)
    s.restart_clock()  # no trial shown: nothing to restart, and the next trial's own clock is used
    s.start_trial()
    clock.t += 1.5
    assert s.answer("real", 3)["response_time_s"] == pytest.approx(1.5)


def test_a_finished_session_cannot_be_answered_again(study):
    s = ReaderSession(study, "R01")
    for _ in range(N_TRIALS):
        s.answer("r", 3)
    assert s.finished and s.position is None and s.current_trial is None
    with pytest.raises(SessionFinishedError, match="finished"):
        s.answer("s", 5)
    reopened = ReaderSession(study, "R01")
    assert reopened.finished
    with pytest.raises(SessionFinishedError, match="cannot be answered again"):
        reopened.start_trial()
    with pytest.raises(SessionFinishedError):
        reopened.answer("s", 5)
    assert len(_log_lines(study)) == N_TRIALS


def test_going_back_only_when_the_study_allows_it(study):
    s = ReaderSession(study, "R01")
    s.answer("r", 3)
    s.answer("r", 3)
    assert not s.can_go_back
    with pytest.raises(NotAllowedError):
        s.go_back()
    with pytest.raises(NotAllowedError):
        s.go_to(1)
    with pytest.raises(InputError, match="before trial 3"):
        s.go_to(5)


def test_answer_command_revises_only_where_allowed(study, cli):
    for _ in range(2):
        assert cli("reader-study", "answer", study, "--reader", "R01", "--answer", "r", "--confidence", "3")[0] == 0
    code, _, err = cli("reader-study", "answer", study, "--reader", "R01", "--answer", "s", "--confidence", "3", "--trial", "1")
    assert code != 0 and "does not allow going back" in err
    _allow_back(study)
    code, out, err = cli("reader-study", "answer", study, "--reader", "R01", "--answer", "s", "--confidence", "3", "--trial", "1")
    assert code == 0, err
    assert [r["type"] for r in _log_lines(study)] == ["answer", "answer", "revision"]
    assert ReaderSession(study, "R01").answer_of(1)["answer"] == "synthetic"


def test_revisions_are_appended_and_the_latest_counts(study):
    _allow_back(study)
    s = ReaderSession(study, "R01")
    s.answer("r", 3)
    s.answer("r", 4)
    s.answer("s", 1)
    assert s.position == 4 and s.can_go_back
    assert s.go_back().index == 3
    assert s.go_back().index == 2
    rec = s.answer("synthetic", 5, comment="changed my mind")
    assert rec["type"] == "revision" and rec["trial_index"] == 2
    assert s.position == 3  # moves on to the next trial
    assert s.go_forward().index == 4
    lines = _log_lines(study)
    assert [r["type"] for r in lines] == ["answer", "answer", "answer", "revision"]
    reopened = ReaderSession(study, "R01")
    assert reopened.answer_of(2)["answer"] == "synthetic" and reopened.answer_of(2)["confidence"] == 5
    assert reopened.n_answered == 3 and reopened.position == 4


def test_bad_answers_are_refused_and_nothing_is_written(study):
    s = ReaderSession(study, "R01")
    for answer, conf in [("maybe", 3), ("r", 0), ("r", 6), ("s", 2.5), ("s", True), ("s", "high")]:
        with pytest.raises(InputError):
            s.answer(answer, conf)
    with pytest.raises(InputError, match="not the current trial"):
        s.answer("r", 3, trial_index=2)
    assert not os.path.exists(os.path.join(study, "answers", "R01.jsonl"))
    with pytest.raises(InputError, match="not part of this study"):
        ReaderSession(study, "R99")


def test_every_answer_is_fsynced_before_answer_returns(study, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    s = ReaderSession(study, "R01")
    log = os.path.realpath(os.path.join(study, "answers", "R01.jsonl"))
    for k in range(1, 4):
        before = len(synced)
        s.answer("r", 3)
        assert log in [p if isinstance(p, int) else os.path.realpath(p) for p in synced[before:]]
        assert len(_log_lines(study)) == k


def test_a_log_from_another_study_or_reader_is_refused(study):
    s = ReaderSession(study, "R01")
    s.answer("r", 3)
    log = os.path.join(study, "answers", "R01.jsonl")
    rec = _log_lines(study)[0]
    with open(log, "a") as f:
        f.write(json.dumps(dict(rec, study_id="rs_0000000000000000", trial_index=2)) + "\n")
    with pytest.raises(InputError, match="another study"):
        ReaderSession(study, "R01")
    with open(log, "w") as f:
        f.write(json.dumps(rec) + "\n")
    shutil.copy(log, os.path.join(study, "answers", "R02.jsonl"))
    with pytest.raises(InputError, match="reader 'R01', not 'R02'"):
        ReaderSession(study, "R02")


def test_a_torn_last_line_is_set_aside_and_a_damaged_middle_line_is_an_error(study):
    s = ReaderSession(study, "R01")
    s.answer("r", 3)
    s.answer("s", 3)
    log = os.path.join(study, "answers", "R01.jsonl")
    with open(log, "ab") as f:
        f.write(b'{"type": "answer", "study_id": "rs_')  # cut off by a crash mid-write
    s2 = ReaderSession(study, "R01")
    assert s2.n_answered == 2 and s2.position == 3 and s2.recovered_torn_line
    s2.answer("r", 1)
    assert [r["trial_index"] for r in _log_lines(study)] == [1, 2, 3]
    assert os.path.exists(log + ".damaged")
    with open(log, "rb") as f:
        content = f.read()
    with open(log, "wb") as f:
        f.write(content.replace(b"\n", b"\nnot json\n", 1))
    with pytest.raises(InputError, match="Line 2 .* damaged"):
        ReaderSession(study, "R01")


def test_the_same_session_open_twice_is_detected(study):
    a = ReaderSession(study, "R01")
    b = ReaderSession(study, "R01")
    a.answer("r", 3)
    with pytest.raises(InputError, match="open twice"):
        b.answer("s", 3)
    assert len(_log_lines(study)) == 1


# --------------------------------------------------------------------------- terminal session

_RUNNER = (
    "import argparse, sys\n"
    "from CrossModalitySynthLib.cli import reader_study_cmd as m\n"
    "p = argparse.ArgumentParser(); sub = p.add_subparsers(dest='command'); m.register(sub, 'reader studies')\n"
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n"
)


def test_sigkill_mid_session_loses_no_recorded_answer(study):
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, "reader-study", "session", study, "--reader", "R01"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
    )
    watchdog = threading.Timer(60.0, proc.kill)
    watchdog.start()
    sent = [("r", 4), ("s", 2), ("s", 5), ("r", 1), ("r", 3)]
    try:
        assert proc.stdout.readline().startswith(f"1 / {N_TRIALS}  ")
        for k, (ans, conf) in enumerate(sent, start=1):
            proc.stdin.write(f"{ans} {conf}\n")
            proc.stdin.flush()
            # the next trial is shown only after the answer is on disk
            assert proc.stdout.readline().startswith(f"{k + 1} / {N_TRIALS}  ")
        proc.stdin.write("s 4\n")  # one more answer in flight ...
        proc.stdin.flush()
        os.kill(proc.pid, signal.SIGKILL)  # ... and the process is killed
        proc.wait(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    lines = _log_lines(study)  # still parses
    assert len(lines) in (len(sent), len(sent) + 1)
    got = [(r["answer"][0], r["confidence"]) for r in lines[: len(sent)]]
    assert got == sent and [r["trial_index"] for r in lines] == list(range(1, len(lines) + 1))
    resumed = ReaderSession(study, "R01")
    assert resumed.n_answered == len(lines) and resumed.position == len(lines) + 1


def test_terminal_session_shows_only_index_and_path(study, cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("r 4\nnonsense\ns2 blurry edges\nq\n"))
    code, out, err = cli("reader-study", "session", study, "--reader", "R02")
    assert code == 0
    lines = out.splitlines()
    trials = ReaderSession(study, "R02").trials
    assert lines[:3] == [f"{k} / {N_TRIALS}  {trials[k - 1].path}" for k in (1, 2, 3)]
    assert lines[3].startswith("stopped: 2 / 8")
    assert "not understood" in err
    assert [(r["answer"], r["confidence"], r["comment"]) for r in _log_lines(study, "R02")] == [
        ("real", 4, None), ("synthetic", 2, "blurry edges"),
    ]


def test_answer_command_and_finished_error(study, cli):
    for k in range(1, N_TRIALS + 1):
        code, out, err = cli("reader-study", "answer", study, "--reader", "R01", "--answer", "s", "--confidence", "3", "--trial", k)
        assert code == 0, err
    assert out.startswith("finished")
    code, out, err = cli("reader-study", "answer", study, "--reader", "R01", "--answer", "r", "--confidence", "3")
    assert code != 0 and "finished" in err and "Traceback" not in err
    code, out, err = cli("reader-study", "session", study, "--reader", "R01")
    assert code != 0 and "cannot be answered again" in err
    code, out, err = cli("reader-study", "status", study)
    assert code == 0 and "R01: 8 / 8 answered, finished" in out and "R02: 0 / 8 answered, next 1 / 8" in out
