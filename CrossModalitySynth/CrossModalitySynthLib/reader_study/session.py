"""One reader's session, without any GUI: current trial, answers, resume, going back.

The Slicer module's reader mode and the ``cmsynth reader-study session`` / ``answer`` commands
both drive a :class:`ReaderSession`; it never knows the truth, so it cannot give feedback.

The answer log ``STUDY/answers/<reader>.jsonl`` holds one JSON object per line, appended once per
answer; each line is written with one ``write`` call, then the file is flushed and ``fsync``-ed
before :meth:`ReaderSession.answer` returns, so an answer the reader has seen accepted survives a
crash or a power cut. A record::

    {"type": "answer", "study_id": "rs_...", "reader_id": "R01", "session": 1, "trial_index": 12,
     "image_id": "t_8f3a2c", "answer": "real", "confidence": 4, "comment": null,
     "response_time_s": 7.31, "timestamp": "2025-01-31T10:02:03.123Z"}

``session`` counts the sittings (1 for the first, 2 after the first resume ...). ``type`` is
``"revision"`` when a reader changes an earlier answer (only when the study allows going back);
the latest record of a trial counts. Reopening resumes at the first unanswered trial. A session
whose trials are all answered is finished: answering again raises :class:`SessionFinishedError`.

A last line cut off by a crash in the middle of a write (it never reached ``fsync``, so the
reader was never shown the next trial) is ignored when reading and moved to ``<log>.damaged``
before the next answer is appended. A damaged line anywhere else, or a line of another study or
reader, is an error.
"""

import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Union

from ..errors import InputError
from .study import Study, utc_now

ANSWERS = {"real": "real", "r": "real", "synthetic": "synthetic", "s": "synthetic", "synth": "synthetic"}
CONFIDENCE_RANGE = (1, 5)
MAX_COMMENT = 2000


class SessionFinishedError(InputError):
    """Every trial of the session is answered; nothing more can be recorded."""


class NotAllowedError(InputError):
    """The study does not allow this (going back, revising an answer)."""


@dataclass(frozen=True)
class Trial:
    """One trial as a reader sees it: no truth, no patient."""

    index: int  #: 1-based
    n_trials: int
    image_id: str
    path: str  #: absolute path of the image file
    plane: Optional[str] = None

    @property
    def label(self) -> str:
        """``"12 / 60"``."""
        return f"{self.index} / {self.n_trials}"


def normalise_answer(answer: str) -> str:
    key = str(answer).strip().lower()
    if key not in ANSWERS:
        raise InputError(f"Answer '{answer}' is not understood; answer 'real' (r) or 'synthetic' (s).")
    return ANSWERS[key]


def check_confidence(confidence) -> int:
    if isinstance(confidence, bool):
        raise InputError("The confidence must be a whole number from 1 to 5.")
    try:
        value = int(confidence)
    except (TypeError, ValueError):
        raise InputError(f"Confidence '{confidence}' must be a whole number from 1 (guessing) to 5 (certain).") from None
    if value != confidence and str(value) != str(confidence).strip():
        raise InputError(f"Confidence '{confidence}' is not a whole number; give 1, 2, 3, 4 or 5.")
    lo, hi = CONFIDENCE_RANGE
    if not lo <= value <= hi:
        raise InputError(f"Confidence {value} is out of range; give a whole number from {lo} (guessing) to {hi} (certain).")
    return value


# --------------------------------------------------------------------------- the log


@dataclass
class LogContents:
    records: List[dict]
    size: int  #: bytes of the valid part (complete lines)
    torn_tail: bytes  #: an incomplete last line (empty when none)


def read_log(path: str, study_id: str, reader_id: str, trials: List[dict]) -> LogContents:
    """Parse and check an answer log (a missing file is an empty log)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return LogContents([], 0, b"")
    cut = raw.rfind(b"\n") + 1
    body, tail = raw[:cut], raw[cut:]
    records = []
    for n, line in enumerate(body.split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InputError(f"Line {n} of the answer log {path} is damaged; restore the log from a backup.") from None
        if not isinstance(rec, dict):
            raise InputError(f"Line {n} of the answer log {path} is not an answer record; restore the log from a backup.")
        if rec.get("study_id") != study_id:
            raise InputError(
                f"The answer log {path} holds answers of study {rec.get('study_id')}, not of this study ({study_id}); "
                "move that log away (it belongs to another study) and reopen the session."
            )
        if rec.get("reader_id") != reader_id:
            raise InputError(
                f"The answer log {path} holds answers of reader '{rec.get('reader_id')}', not '{reader_id}'; "
                "move that log away and reopen the session."
            )
        if rec.get("type") in ("answer", "revision"):
            idx = rec.get("trial_index")
            if not isinstance(idx, int) or not 1 <= idx <= len(trials) or trials[idx - 1]["image_id"] != rec.get("image_id"):
                raise InputError(
                    f"Line {n} of the answer log {path} does not match this reader's trial list (trial {idx}, image "
                    f"{rec.get('image_id')}); the log belongs to another session, move it away."
                )
        records.append(rec)
    return LogContents(records, len(body), tail)


def _fsync_dir(folder: str) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AnswerLog:
    """Append-only JSON-lines file; every :meth:`append` is on disk (fsync) when it returns.

    The log notices when another program appended to it since it was read (the same session
    open twice) and refuses to write then.
    """

    def __init__(self, path: str, size: int, torn_tail: bytes = b""):
        self.path = path
        self._size = size
        self._torn_tail = torn_tail

    def _discard_torn_tail(self) -> None:
        with open(self.path + ".damaged", "ab") as f:
            f.write(self._torn_tail + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with open(self.path, "r+b") as f:
            f.truncate(self._size)
            f.flush()
            os.fsync(f.fileno())
        self._torn_tail = b""

    def append(self, record: dict) -> None:
        line = (json.dumps(record, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")
        existed = os.path.exists(self.path)
        current = os.path.getsize(self.path) if existed else 0
        if current != self._size + len(self._torn_tail):
            raise InputError(
                f"The answer log {self.path} was changed by another program since this session was opened "
                "(is the session open twice?); close the other one and reopen this session."
            )
        if self._torn_tail:
            self._discard_torn_tail()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        try:
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if not existed:
            _fsync_dir(os.path.dirname(self.path))
        self._size += len(line)


# --------------------------------------------------------------------------- the session


class ReaderSession:
    """A reader's place in their trial list, and their answers.

    :param study: a :class:`Study` or the path of a study folder.
    :param reader_id: one of the study's readers.
    :param clock: a monotonic clock in seconds (for response times; injectable for tests).
    """

    def __init__(self, study: Union[Study, str], reader_id: str, clock: Callable[[], float] = time.monotonic):
        self.study = study if isinstance(study, Study) else Study.load(study)
        self.reader_id = self.study.check_reader(reader_id)
        self._clock = clock
        raw = self.study.load_trials(reader_id)
        n = len(raw)
        self.trials = [
            Trial(int(t["index"]), n, str(t["image_id"]), self.study.image_path(str(t["file"])), t.get("plane"))
            for t in raw
        ]
        log = read_log(self.study.log_file(reader_id), self.study.study_id, reader_id, raw)
        self._log = AnswerLog(self.study.log_file(reader_id), log.size, log.torn_tail)
        self._latest: Dict[int, dict] = {}
        sittings = [0]
        for rec in log.records:
            if rec.get("type") in ("answer", "revision"):
                self._latest[int(rec["trial_index"])] = rec
            if isinstance(rec.get("session"), int):
                sittings.append(rec["session"])
        self.sitting = max(sittings) + 1
        self.recovered_torn_line = bool(log.torn_tail)
        self._position = self.first_unanswered
        self._shown_at: Optional[float] = None
        self._shown_index: Optional[int] = None
        self._last_event = self._clock()

    # ------------------------------------------------------------------ state

    @property
    def n_trials(self) -> int:
        return len(self.trials)

    @property
    def n_answered(self) -> int:
        return len(self._latest)

    @property
    def finished(self) -> bool:
        return self.n_answered == self.n_trials

    @property
    def first_unanswered(self) -> Optional[int]:
        """1-based index of the first trial without an answer; None when finished."""
        for t in self.trials:
            if t.index not in self._latest:
                return t.index
        return None

    @property
    def position(self) -> Optional[int]:
        """1-based index of the trial shown now; None when finished."""
        return None if self.finished else self._position

    @property
    def current_trial(self) -> Optional[Trial]:
        pos = self.position
        return None if pos is None else self.trials[pos - 1]

    def answers(self) -> Dict[int, dict]:
        """trial index -> the record that counts (the latest)."""
        return dict(self._latest)

    def answer_of(self, index: int) -> Optional[dict]:
        return self._latest.get(int(index))

    # ------------------------------------------------------------------ navigation

    def _require_open(self) -> None:
        if self.finished:
            raise SessionFinishedError(
                f"Reader '{self.reader_id}' has answered all {self.n_trials} trials; the session is finished and "
                "cannot be answered again."
            )

    def start_trial(self) -> Trial:
        """The current trial; starts its response-time clock (once per trial shown)."""
        self._require_open()
        trial = self.current_trial
        if self._shown_index != trial.index:
            self._shown_index = trial.index
            self._shown_at = self._clock()
        return trial

    def restart_clock(self) -> None:
        """Restart the shown trial's response-time clock: the reader sees the trial only now (a web
        page that connects, or reconnects after a reload, after the trial was put on screen)."""
        if self._shown_index is not None:
            self._shown_at = self._clock()

    @property
    def can_go_back(self) -> bool:
        return self.study.allow_back and not self.finished and self._position > 1

    def go_to(self, index: int) -> Trial:
        """Move to trial ``index``: an answered trial (only when the study allows going back) or
        the first unanswered one."""
        self._require_open()
        index = int(index)
        first = self.first_unanswered
        if index == first:
            self._position = index
            return self.start_trial()
        if not 1 <= index <= self.n_trials:
            raise InputError(f"There is no trial {index}; trials run from 1 to {self.n_trials}.")
        if index > first:
            raise InputError(f"Trial {index} cannot be opened before trial {first} is answered.")
        if not self.study.allow_back:
            raise NotAllowedError("This study does not allow going back to earlier trials.")
        self._position = index
        return self.start_trial()

    def go_back(self) -> Trial:
        if not self.study.allow_back:
            raise NotAllowedError("This study does not allow going back to earlier trials.")
        self._require_open()
        if self._position <= 1:
            raise InputError("This is the first trial; there is none before it.")
        return self.go_to(self._position - 1)

    def go_forward(self) -> Trial:
        """After going back: the next trial (up to the first unanswered one)."""
        self._require_open()
        return self.go_to(min(self._position + 1, self.first_unanswered))

    # ------------------------------------------------------------------ answering

    def answer(
        self,
        answer: str,
        confidence: int,
        comment: Optional[str] = None,
        response_time_s: Optional[float] = None,
        trial_index: Optional[int] = None,
    ) -> dict:
        """Record the answer to the current trial (on disk when this returns) and move on.

        :param answer: "real"/"r" or "synthetic"/"s".
        :param confidence: 1 (guessing) ... 5 (certain).
        :param comment: optional free text (up to 2000 characters).
        :param response_time_s: seconds the reader took; default: since :meth:`start_trial`
            (or since the session object was made / the last answer).
        :param trial_index: when given, must be the current trial (guards against answering
            another image than the one shown).
        :returns: the record written.
        """
        self._require_open()
        value = normalise_answer(answer)
        conf = check_confidence(confidence)
        if comment is not None:
            comment = str(comment).strip()
            if len(comment) > MAX_COMMENT:
                raise InputError(f"The comment is {len(comment)} characters long; keep it under {MAX_COMMENT}.")
            comment = comment or None
        trial = self.current_trial
        if trial_index is not None and int(trial_index) != trial.index:
            raise InputError(f"Trial {trial_index} is not the current trial ({trial.label}); answer the trial shown.")
        revision = trial.index in self._latest
        if revision and not self.study.allow_back:  # cannot happen through navigation; a safety net
            raise NotAllowedError("This study does not allow changing an answer.")
        now = self._clock()
        if response_time_s is None:
            started = self._shown_at if self._shown_index == trial.index else self._last_event
            response_time_s = max(0.0, now - started)
        elif not response_time_s >= 0:
            raise InputError(f"The response time must be a non-negative number of seconds; got {response_time_s}.")
        record = {
            "type": "revision" if revision else "answer",
            "study_id": self.study.study_id,
            "reader_id": self.reader_id,
            "session": self.sitting,
            "trial_index": trial.index,
            "image_id": trial.image_id,
            "answer": value,
            "confidence": conf,
            "comment": comment,
            "response_time_s": None if response_time_s is None else round(float(response_time_s), 3),
            "timestamp": utc_now(),
        }
        self._log.append(record)
        self._latest[trial.index] = record
        first = self.first_unanswered
        if first is not None:
            self._position = min(trial.index + 1, first) if revision else first
        self._shown_index = None
        self._last_event = now
        return record

