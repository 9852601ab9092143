"""The Reader study section: one reader's blinded session, shown one trial at a time.

A thin adapter over the colleague's :mod:`CrossModalitySynthLib.reader_study` package:
:class:`~CrossModalitySynthLib.reader_study.session.ReaderSession` records answers (on disk when
:meth:`ReaderController.answer` returns, never any feedback) and
:class:`~CrossModalitySynthLib.slicer_support.reader_scene.ReaderScene` shows a trial as one pseudonymous
volume node with the study's fixed window. The widget only forwards button presses and keys.

The session starts at the first unanswered trial (resume after a crash or a pause); a finished
session shows nothing and refuses further answers; going back exists only when the study allows
it.
"""

import time
from typing import Callable, Optional

from ..errors import InputError


class ReaderController:
    """A reader's session in a scene.

    :param study_dir: the study folder (written by ``cmsynth reader-study create``).
    :param reader_id: one of the study's readers.
    :param scene: the MRML scene to show the trials in.
    :param clock: monotonic clock in seconds (response times).
    """

    def __init__(self, study_dir: str, reader_id: str, scene, clock: Callable[[], float] = time.monotonic):
        from ..reader_study import ReaderSession
        from .reader_scene import ReaderScene

        reader_id = (reader_id or "").strip()
        if not reader_id:
            raise InputError("Enter your reader id (as given by the study coordinator) before opening the study.")
        self.session = ReaderSession(study_dir, reader_id, clock=clock)
        self.view = ReaderScene.for_study(self.session.study, scene)
        self.trial = None
        self.node = None

    @property
    def study(self):
        return self.session.study

    @property
    def finished(self) -> bool:
        return self.session.finished

    @property
    def progress_text(self) -> str:
        """``"12 / 60"`` (the trial shown), or ``"60 / 60 answered"`` when the session is finished."""
        n = self.session.n_trials
        if self.session.finished:
            return f"{n} / {n} answered"
        return self.session.current_trial.label

    @property
    def allows_back(self) -> bool:
        return self.session.can_go_back

    def show_current(self):
        """Show the current trial (start its clock); returns it, or None when finished."""
        if self.session.finished:
            self.view.clear()
            self.trial = self.node = None
            return None
        self.trial = self.session.start_trial()
        self.node = self.view.show(self.trial)
        return self.trial

    def answer(self, answer: str, confidence: int, comment: Optional[str] = None):
        """Record the answer to the trial shown, then show the next one (None when finished)."""
        if self.trial is None:
            raise InputError("No trial is shown; open the study first.")
        self.session.answer(answer, confidence, comment=comment, trial_index=self.trial.index)
        return self.show_current()

    def go_back(self):
        """Show the previous trial (only when the study allows it)."""
        self.trial = self.session.go_back()
        self.node = self.view.show(self.trial)
        return self.trial

    def close(self) -> None:
        """Remove the trial node from the scene."""
        self.view.clear()
        self.trial = self.node = None
