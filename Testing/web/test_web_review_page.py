"""``cmsynth view`` in real Chromium: a real ``cmsynth run`` of the demo models on a phantom case,
served by a real ``cmsynth view`` subprocess on 127.0.0.1.

Checked on the pixels the browser shows: both slice views hold images, the liver outline is drawn
(and goes when switched off), scrolling one slice view moves the other, a window preset changes the
CT's view and not the other one, and the 3D view shows the liver surface; the same for a CT ->
synthetic MRI run (no liver: no 3D view, the presets act on the input CT).
"""

import io
import os
import subprocess
import sys

import numpy as np
import pytest

from testsupport.web import browser, free_port, require_web, wait_listening

pytestmark = pytest.mark.slow

CMSYNTH = os.path.join(os.path.dirname(sys.executable), "cmsynth")


def cmsynth(*args):
    out = subprocess.run([CMSYNTH] + [str(a) for a in args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    require_web()
    root = tmp_path_factory.mktemp("review")
    cmsynth("phantom", "--out", root / "ph", "--cases", "1", "--seed", 5, "--size", "small")
    case = root / "ph" / "case_000"
    cmsynth("run", "--model", "demo-t1dual-to-ct", "--liver-model", "demo-liver-unet-t1in", "--out", root / "mr2ct",
            case / "t1_in.nii.gz", case / "t1_opp.nii.gz")
    cmsynth("run", "--model", "demo-ct-to-t1in-essnet", "--out", root / "ct2mr", case / "ct.nii.gz")
    return {"mr2ct": str(root / "mr2ct"), "ct2mr": str(root / "ct2mr")}


class Served:
    def __init__(self, run_dir):
        self.port = free_port()
        self.proc = subprocess.Popen([CMSYNTH, "view", run_dir, "--port", str(self.port)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("review page: http://localhost:"), line
        wait_listening(self.port)

    def stop(self):
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=20)
        assert "Traceback" not in err, err


def views(page):
    return page.locator(".layout-grid-item")


def pixels(page, i):
    from PIL import Image

    png = views(page).nth(i).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)


def outline_pixels(rgb):
    """Pixels of the liver's colour (a warm yellow: red and green high, blue low)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(((r > 170) & (g > 120) & (b < 110) & (r - b > 90)).sum())


def settle(page, ms=1500):
    page.wait_for_timeout(ms)


def open_page(pw, served):
    chromium = browser(pw)
    page = chromium.new_page(viewport={"width": 1400, "height": 700})
    page.goto(f"http://127.0.0.1:{served.port}/")
    page.wait_for_selector("#cms-controls", timeout=120_000)
    settle(page, 3000)
    return chromium, page


def test_review_of_an_mri_to_ct_run(runs):
    from playwright.sync_api import sync_playwright

    served = Served(runs["mr2ct"])
    try:
        with sync_playwright() as pw:
            chromium, page = open_page(pw, served)
            assert views(page).count() == 3
            assert page.locator("#cms-input-label").inner_text() == "Input MRI"
            mri, sct, surface = (pixels(page, i) for i in range(3))
            for name, img in (("MRI", mri), ("synthetic CT", sct)):
                grey = img.mean(axis=2)
                assert grey.std() > 10 and len(np.unique(grey)) > 50, f"the {name} view shows no image"
            assert outline_pixels(mri) > 100 and outline_pixels(sct) > 100, "no liver outline"
            assert outline_pixels(surface) > 2000, "no liver surface in 3D"

            page.get_by_label("Liver outline").click()  # outline off
            settle(page)
            assert outline_pixels(pixels(page, 0)) < outline_pixels(mri) / 10

            # the wheel over the MRI view moves its slice, and the linked synthetic CT view follows
            slice_before = page.evaluate("() => window.trame.state.get('slice')")
            mri, sct = pixels(page, 0), pixels(page, 1)
            box = views(page).nth(0).bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            for _ in range(3):
                page.mouse.wheel(0, 120)
                page.wait_for_timeout(200)
            settle(page)
            assert page.evaluate("() => window.trame.state.get('slice')") != slice_before, "the slider did not follow"
            assert np.abs(pixels(page, 0) - mri).mean() > 1.0, "the MRI view did not scroll"
            assert np.abs(pixels(page, 1) - sct).mean() > 1.0, "the linked synthetic CT view did not follow"

            # the bone window changes the synthetic CT's view, not the MRI's
            mri, sct = pixels(page, 0), pixels(page, 1)
            page.locator("#cms-preset-bone").click()
            settle(page)
            assert np.abs(pixels(page, 1) - sct).mean() > 3.0, "the bone preset did not change the CT view"
            assert np.abs(pixels(page, 0) - mri).mean() < 0.5, "the preset changed the MRI view"
            chromium.close()
    finally:
        served.stop()


def test_review_of_a_ct_to_mri_run(runs):
    from playwright.sync_api import sync_playwright

    served = Served(runs["ct2mr"])
    try:
        with sync_playwright() as pw:
            chromium, page = open_page(pw, served)
            assert views(page).count() == 2  # no liver label: no 3D view
            assert page.locator("#cms-input-label").inner_text() == "Input CT"
            assert page.locator("#cms-synthetic-label").inner_text() == "Synthetic MRI"
            ct, smri = pixels(page, 0), pixels(page, 1)
            assert smri.mean(axis=2).std() > 10
            page.locator("#cms-preset-bone").click()
            settle(page)
            assert np.abs(pixels(page, 0) - ct).mean() > 3.0, "the bone preset did not change the input CT's view"
            assert np.abs(pixels(page, 1) - smri).mean() < 0.5
            chromium.close()
    finally:
        served.stop()


def test_view_refuses_a_folder_that_is_no_run_in_one_sentence(tmp_path):
    require_web()
    out = subprocess.run([CMSYNTH, "view", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "summary.json" in out.stderr
    out = subprocess.run([CMSYNTH, "view", "--mri", str(tmp_path / "none.nii.gz"), "--synthetic", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "none.nii.gz" in out.stderr
