"""A reader answers a served study in real Chromium, with the keyboard alone.

``cmsynth reader-study serve`` runs as a real subprocess on 127.0.0.1; Debian's Chromium, driven
by Playwright, opens the printed links. The test types the answers, reloads the page, SIGKILLs the
server and starts it again, and checks the answer files against what was typed, the screenshots
against a blank view, and everything the page received against the study's secrets.
"""

import io
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.readers import write_dataset
from testsupport.web import ServedStudy, answers, browser, drag_across, require_web, wslink_texts

pytestmark = pytest.mark.slow

N_TRIALS = 6
#: What reader R01 types, trial by trial: (key for the answer, key for the confidence).
TYPED = [("r", "4"), ("s", "2"), ("s", "5"), ("r", "1"), ("r", "3"), ("s", "4")]
#: What reader R02 types, at the same time as R01.
TYPED_R02 = [("s", "3"), ("s", "3"), ("r", "5"), ("r", "2"), ("s", "1"), ("r", "4")]


def make_study(root, *options):
    root = pathlib.Path(root)
    data = write_dataset(str(root / "data"), N_TRIALS, seed=3)
    for folder in data.values():  # 3 HU more soft tissue per mm of z: each slice differs from the next
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            img = sitk.ReadImage(path)
            arr = sitk.GetArrayFromImage(img).astype(np.float32)
            z_mm = np.arange(arr.shape[0], dtype=np.float32)[:, None, None] * img.GetSpacing()[2]
            arr += np.where(arr > -200, 3.0 * z_mm, 0.0)
            out = sitk.GetImageFromArray(np.rint(arr).astype(np.int16))
            out.CopyInformation(img)
            sitk.WriteImage(out, path)
    study_dir = str(root / "hospital_x_liver_study")  # a folder name that must not reach the page
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "cmsynth"), "reader-study", "create", "--real", data["real"],
         "--synthetic", data["synthetic"], "--readers", "2", "--trials-per-reader", str(N_TRIALS), "--mode", "volumes",
         "--size", "64", "64", "20", "--spacing", "1.6", "1.6", "4", "--out", study_dir, *options],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    return study_dir


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("webstudy"))


def secrets_of(study_dir):
    """Strings that must never reach a reader's browser: image ids, file names, patient ids, paths,
    the truth's words."""
    with open(study_dir + "_key.json", encoding="utf-8") as f:
        key = json.load(f)
    words = {os.path.basename(study_dir), os.path.dirname(study_dir), "_key.json", ".nrrd", ".nii", "images/"}
    for path in os.listdir(os.path.join(study_dir, "images")):
        words.add(path)
        words.add(path.split(".")[0])
    text = json.dumps(key)
    for pid in ("p00", "p01", "p02", "p03", "p04", "p05"):
        if pid in text:
            words.add(pid)
    return words


def view_pixels(page):
    png = page.locator("#cms-view").screenshot()
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)


def progress(page):
    return page.locator("#cms-progress").inner_text().strip()


def wait_progress(page, text, timeout=60_000):
    page.wait_for_function(
        "t => { const e = document.querySelector('#cms-progress'); return e && e.innerText.trim() === t; }",
        arg=text, timeout=timeout)


def client_state(page):
    return page.evaluate("() => JSON.stringify(window.trame && window.trame.state ? window.trame.state.state : null)")


def type_answer(page, keys):
    answer, confidence = keys
    page.keyboard.press(answer)
    page.keyboard.press(confidence)
    page.keyboard.press("Enter")


def open_reader(context, url, frames):
    page = context.new_page()

    def on_ws(ws):
        ws.on("framereceived", lambda payload: frames.append(payload))
        ws.on("framesent", lambda payload: frames.append(payload))

    page.on("websocket", on_ws)
    page.goto(url)
    return page


def test_a_reader_completes_the_study_with_the_keyboard_through_reload_and_sigkill(study, tmp_path):
    require_web()
    from playwright.sync_api import sync_playwright

    served = ServedStudy(study, str(tmp_path)).start()
    frames, texts = [], []
    try:
        with sync_playwright() as pw:
            chromium = browser(pw)
            context = chromium.new_context(viewport={"width": 1100, "height": 800})
            r1 = open_reader(context, served.links["R01"], frames)
            wait_progress(r1, f"1 / {N_TRIALS}", timeout=120_000)
            r2 = open_reader(context, served.links["R02"], frames)
            wait_progress(r2, f"1 / {N_TRIALS}", timeout=120_000)

            pixels = view_pixels(r1)
            assert pixels.std() > 10 and len(np.unique(pixels)) > 50, "the slice view shows no image"
            # the study does not allow window changes: a drag (Slicer's window/level) changes nothing
            drag_across(r1, "#cms-view")
            assert np.abs(view_pixels(r1) - pixels).mean() < 1.0, "the window changed"
            # volumes mode: the wheel scrolls through the slices
            for _ in range(4):
                r1.mouse.wheel(0, 120)
                r1.wait_for_timeout(200)
            r1.wait_for_timeout(1500)
            assert np.abs(view_pixels(r1) - pixels).mean() > 1.0, "the wheel did not move the slice"

            # trials 1-2; R02 answers at the same time; Enter pressed twice on trial 2 records one answer
            for i in range(2):
                for page, typed in ((r1, TYPED), (r2, TYPED_R02)):
                    page.bring_to_front()
                    type_answer(page, typed[i])
                    if page is r1 and i == 1:
                        page.keyboard.press("Enter")
                    wait_progress(page, f"{i + 2} / {N_TRIALS}")
            assert len(answers(study, "R01")) == 2 and len(answers(study, "R02")) == 2

            # the study does not allow going back: no Previous button, Backspace does nothing
            assert r1.locator("#cms-back").count() == 0
            r1.keyboard.press("Backspace")
            r1.wait_for_timeout(500)
            assert progress(r1) == f"3 / {N_TRIALS}"

            # a reload resumes at the first trial without an answer
            texts.append(r1.locator("body").inner_text())
            r1.reload()
            wait_progress(r1, f"3 / {N_TRIALS}")
            type_answer(r1, TYPED[2])
            wait_progress(r1, f"4 / {N_TRIALS}")
            texts.append(r1.locator("body").inner_text() + r1.title() + client_state(r1) + r1.url)

            # SIGKILL of the server mid-session, then a restart: nothing lost, the same link resumes
            served.kill()
            assert len(answers(study, "R01")) == 3
            served = ServedStudy(study, str(tmp_path), port=served.port).start()
            r1.goto(served.links["R01"])
            wait_progress(r1, f"4 / {N_TRIALS}", timeout=120_000)
            for i in range(3, N_TRIALS):
                type_answer(r1, TYPED[i])
                if i < N_TRIALS - 1:
                    wait_progress(r1, f"{i + 2} / {N_TRIALS}")
            r1.wait_for_selector("#cms-finished", timeout=60_000)
            texts.append(r1.locator("body").inner_text() + r1.title() + client_state(r1))
            chromium.close()
    finally:
        served.stop()

    records = [r for r in answers(study, "R01") if r["type"] == "answer"]
    assert [(r["trial_index"], r["answer"], r["confidence"]) for r in records] == [
        (i + 1, "real" if a == "r" else "synthetic", int(c)) for i, (a, c) in enumerate(TYPED)]
    assert {r["reader_id"] for r in records} == {"R01"}
    r2_records = answers(study, "R02")
    assert [(r["reader_id"], r["answer"], r["confidence"]) for r in r2_records] == [
        ("R02", "real" if a == "r" else "synthetic", int(c)) for a, c in TYPED_R02[:2]]

    secrets = secrets_of(study)
    received = wslink_texts(frames)
    assert "trame.state.get" in received and f"2 / {N_TRIALS}" in received  # the frames were decoded
    seen = "\n".join(texts + received)
    leaked = sorted(s for s in secrets if s and s in seen)
    assert not leaked, f"the browser received {leaked}"
    assert served.key_opens() == [], "the server opened the answer key"

    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "cmsynth"), "reader-study", "analyze", study, "--key", study + "_key.json",
         "--out", str(tmp_path / "analysis")], capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "analysis" / "readings.csv", encoding="utf-8") as f:
        rows = [line for line in f.read().splitlines()[1:] if line.strip()]
    assert sum(1 for row in rows if row.startswith("R01,")) == N_TRIALS
    assert sum(1 for row in rows if row.startswith("R02,")) == 2


def test_going_back_and_changing_the_window_when_the_study_allows_them(tmp_path):
    require_web()
    from playwright.sync_api import sync_playwright

    study_dir = make_study(tmp_path / "allowing", "--allow-back", "--allow-window-change")
    served = ServedStudy(study_dir, str(tmp_path)).start()
    try:
        with sync_playwright() as pw:
            chromium = browser(pw)
            page = chromium.new_page(viewport={"width": 1100, "height": 800})
            page.goto(served.links["R01"])
            wait_progress(page, f"1 / {N_TRIALS}", timeout=120_000)
            before = view_pixels(page)
            drag_across(page, "#cms-view")
            assert np.abs(view_pixels(page) - before).mean() > 1.0, "the window did not change"

            type_answer(page, ("r", "2"))
            wait_progress(page, f"2 / {N_TRIALS}")
            assert page.locator("#cms-back").count() == 1
            page.keyboard.press("Backspace")
            wait_progress(page, f"1 / {N_TRIALS}")  # the earlier answer is shown again
            assert page.evaluate("() => [window.trame.state.get('answer'), window.trame.state.get('confidence')]") == [
                "real", 2]
            type_answer(page, ("s", "5"))
            wait_progress(page, f"2 / {N_TRIALS}")
            chromium.close()
    finally:
        served.stop()
    records = answers(study_dir, "R01")
    assert [(r["type"], r["trial_index"], r["answer"], r["confidence"]) for r in records] == [
        ("answer", 1, "real", 2), ("revision", 1, "synthetic", 5)]
