"""One reader's web page: one trial at a time in a Slicer slice view, answered with the keyboard.

Run by :mod:`.gateway` as one process per reader (``python -m CrossModalitySynthLib.web.reader_page
STUDY READER --port N``); the gateway checks the reader's token and forwards the page to it. The
process holds one :class:`~CrossModalitySynthLib.reader_study.session.ReaderSession`, so every
answer is written by the same crash-safe code as in Slicer's reader mode, and a reload or a new
process resumes at the first trial without an answer.

What reaches the browser: the progress ("12 / 60"), the controls' state, a short message, and the
view's pixels. The trial's image id, its file, its patient and its truth never do: they stay in
the server's session and scene. The trial shown is named to the client only by its position, and
an answer carries that position, so a second Enter on the same trial, or an answer to a trial that
is no longer shown, records nothing.

Keys: R / S (real / synthetic), 1-5 (confidence), Enter (submit), Backspace or the Previous button
(back, only when the study allows it). In the comment field the keys type text; Enter submits.
"""

import argparse
import sys
from typing import Optional

from ..errors import CMSynthError
from ..reader_study.session import ReaderSession, SessionFinishedError
from ..slicer_support.reader_scene import ReaderScene
from .slicer_views import MISSING_WEB, make_viewer
from .parent_watch import exit_when_stdin_closes

TITLE = "Reader study"
READER_VIEW = "Red"

# Keyboard shortcuts, in the browser. Typing in the comment field types text; Enter submits.
KEYS_JS = """
window.addEventListener('keydown', (e) => {
  const t = window.trame; if (!t || t.state.get('finished')) return;
  const inText = e.target && (e.target.tagName === 'TEXTAREA' || e.target.tagName === 'INPUT');
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); t.trigger('submit', [t.state.get('shown'),
      t.state.get('answer'), t.state.get('confidence'), t.state.get('comment')]); return; }
  if (inText) return;
  const k = e.key.toLowerCase();
  if (k === 'r') t.state.set('answer', 'real');
  else if (k === 's') t.state.set('answer', 'synthetic');
  else if (['1', '2', '3', '4', '5'].includes(k)) t.state.set('confidence', Number(k));
  else if (e.key === 'Backspace' && t.state.get('can_back')) { e.preventDefault(); t.trigger('back', []); }
});
"""


class ReaderPage:
    """The trame application of one reader's session."""

    def __init__(self, server, study_dir: str, reader_id: str):
        self.server = server
        self.session = ReaderSession(study_dir, reader_id)
        study = self.session.study
        self.viewer = make_viewer(server, [{"kind": "slice", "name": READER_VIEW, "orientation": "Axial"}])
        self.scene = ReaderScene.for_study(study, self.viewer.scene)
        state = server.state
        state.trame__title = TITLE
        state.update(
            {"progress": "", "shown": 0, "answer": None, "confidence": None, "comment": "",
             "finished": False, "can_back": False, "message": "", "instructions": study.data.get("instructions", "")}
        )
        server.controller.add("on_server_ready")(self._show_current)
        server.controller.add("on_client_connected")(self._client_connected)
        server.trigger("submit")(self.submit)
        server.trigger("back")(self.back)
        self._build_ui()

    # ------------------------------------------------------------------ the session

    def _show_current(self, **_kwargs) -> None:
        state = self.server.state
        with state:
            if self.session.finished:
                self.scene.clear()
                state.update({"finished": True, "progress": f"{self.session.n_trials} / {self.session.n_trials}",
                              "shown": 0, "can_back": False})
                return
            trial = self.session.start_trial()
            self.scene.show(trial)
            view = self.viewer.view(READER_VIEW)
            view.fit_view_to_content()
            previous = self.session.answer_of(trial.index)
            state.update(
                {
                    "progress": trial.label,
                    "shown": trial.index,
                    "answer": previous["answer"] if previous else None,
                    "confidence": previous["confidence"] if previous else None,
                    "comment": (previous.get("comment") or "") if previous else "",
                    "can_back": self.session.can_go_back,
                }
            )

    def _client_connected(self, **_kwargs) -> None:
        """A browser (re)connected: the response time of the shown trial counts from now."""
        if not self.session.finished:
            self.session.restart_clock()

    def submit(self, shown=None, answer=None, confidence=None, comment=None) -> None:
        """Record the answer to the trial at position ``shown``; anything else is ignored or explained."""
        state = self.server.state
        if self.session.finished or not isinstance(shown, int) or shown != self.session.position:
            return  # a repeated Enter, or an answer to a trial no longer shown
        if answer not in ("real", "synthetic"):
            state.message = "Choose Real (R) or Synthetic (S) first."
            return
        if confidence not in (1, 2, 3, 4, 5):
            state.message = "Choose a confidence from 1 to 5 first."
            return
        text = comment if isinstance(comment, str) else None
        try:
            self.session.answer(answer, confidence, comment=text, trial_index=shown)
        except SessionFinishedError:
            return
        except CMSynthError as exc:
            state.message = str(exc)
            return
        state.message = ""
        self._show_current()

    def back(self) -> None:
        if not self.session.can_go_back:
            return
        try:
            self.session.go_back()
        except CMSynthError as exc:
            self.server.state.message = str(exc)
            return
        self._show_current()

    # ------------------------------------------------------------------ the page

    def _build_ui(self) -> None:
        from trame.ui.vuetify3 import VAppLayout
        from trame.widgets import client, html
        from trame.widgets import vuetify3 as v

        with VAppLayout(self.server, theme="dark", full_height=True) as layout:
            client.Script(KEYS_JS)
            client.Style("html { overflow: hidden; } .cms-view { flex: 1; display: flex; min-height: 0; }")
            with v.VMain(style="height: 100vh;"):
                with html.Div(style="display: flex; flex-direction: column; height: 100%;"):
                    with html.Div(v_if="finished", classes="pa-8 text-h6", id="cms-finished"):
                        html.Span("All images are answered. Thank you; you can close this page.")
                    with html.Div(v_show="!finished", classes="cms-view", id="cms-view"):
                        self.viewer.layout_manager.initialize_layout_grid(layout)
                    with html.Div(v_show="!finished", classes="d-flex align-center pa-2 ga-2 flex-wrap",
                                  id="cms-controls"):
                        html.Span("{{ progress }}", id="cms-progress", classes="text-h6 mr-4")
                        with v.VBtnToggle(v_model="answer", mandatory=False, color="primary", density="compact"):
                            v.VBtn("Real (R)", value="real", id="cms-real")
                            v.VBtn("Synthetic (S)", value="synthetic", id="cms-synthetic")
                        with v.VBtnToggle(v_model="confidence", color="secondary", density="compact"):
                            for level in range(1, 6):
                                v.VBtn(str(level), value=level, id=f"cms-confidence-{level}")
                        html.Span("1 guessing ... 5 certain", classes="text-caption mr-2")
                        v.VTextarea(v_model="comment", label="Comment (optional)", rows=1, auto_grow=True,
                                    hide_details=True, density="compact", style="max-width: 24em;",
                                    id="cms-comment", maxlength=2000)
                        v.VBtn("Previous", v_if="can_back", click="trigger('back', [])", id="cms-back")
                        v.VBtn("Submit (Enter)", color="primary", id="cms-submit",
                               click="trigger('submit', [shown, answer, confidence, comment])")
                        html.Span("{{ message }}", id="cms-message", classes="text-warning ml-2")
        self.layout = layout


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m CrossModalitySynthLib.web.reader_page",
                                     description="One reader's web page (started by 'cmsynth reader-study serve').")
    parser.add_argument("study")
    parser.add_argument("reader")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--exit-with-stdin", action="store_true", help="end when stdin closes (the gateway went)")
    parser.add_argument("--authKeyFile", metavar="FILE",
                        help="the websocket key a client must say (read by trame; the gateway says it for the browser)")
    return parser


def main(argv: Optional[list] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.exit_with_stdin:
        exit_when_stdin_closes()
    try:
        from trame.app import get_server
    except ImportError as exc:
        print(f"{MISSING_WEB} ({exc})", file=sys.stderr)
        return 2
    server = get_server(client_type="vue3")
    try:
        ReaderPage(server, args.study, args.reader)
    except CMSynthError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"page of reader {args.reader} listening on {args.host}:{args.port}", flush=True)
    server.start(host=args.host, port=args.port, open_browser=False, show_connection_info=False, disable_logging=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
