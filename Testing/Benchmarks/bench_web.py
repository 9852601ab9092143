"""Web reader page latency: the slice step round trip and the time from Enter to the next trial,
for a study of 512 x 512 x 100 CT volumes, against the same page on a 128 x 128 x 25 study, in one
run. Also the peak memory of the reader's page process.

Not a test. Real ``cmsynth reader-study serve`` processes, real Chromium (Playwright). Timed in
the page with ``performance.now()``:

- slice step: from the wheel event over the view to the view's next image in the page (the image
  element's new ``src``); that is the whole round trip: event to the server, render, JPEG,
  websocket, decode;
- Enter to next trial: from the Enter key to both the progress text and the view's image changed.

Targets (issue 15): a slice step at most 150 ms, Enter to the next trial at most 1 s. Run:

    .venv/bin/python Testing/Benchmarks/bench_web.py [--steps 20] [--json FILE]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # Testing/
from testsupport.machine import cpu_model  # noqa: E402
from testsupport.readers import ct_like  # noqa: E402
from testsupport.web import ServedStudy, browser  # noqa: E402

CMSYNTH = os.path.join(os.path.dirname(sys.executable), "cmsynth")

WATCH_JS = """
() => {
  window.__cms = {imgAt: [], progressAt: []};
  new MutationObserver(() => window.__cms.imgAt.push(performance.now()))
    .observe(document.querySelector('#cms-view'), {attributes: true, subtree: true, attributeFilter: ['src']});
  new MutationObserver(() => window.__cms.progressAt.push(performance.now()))
    .observe(document.querySelector('#cms-progress'), {characterData: true, childList: true, subtree: true});
  window.addEventListener('keydown', (e) => { if (e.key === 'Enter') window.__cms.enterAt = performance.now(); },
                          true);
  window.addEventListener('wheel', () => { window.__cms.wheelAt = performance.now(); }, true);
}
"""


def make_study(root, shape_zyx, spacing, n=4):
    real, syn = os.path.join(root, "real"), os.path.join(root, "synthetic")
    os.makedirs(real)
    os.makedirs(syn)
    for i in range(n):
        sitk.WriteImage(ct_like(i, shape_zyx=shape_zyx, spacing=spacing), os.path.join(real, f"p{i:02d}.nii.gz"))
        sitk.WriteImage(ct_like(100 + i, shape_zyx=shape_zyx, spacing=spacing, blur=1.0, noise=10.0),
                        os.path.join(syn, f"p{i:02d}.nii.gz"))
    study = os.path.join(root, "study")
    nz, ny, nx = shape_zyx
    subprocess.run([CMSYNTH, "reader-study", "create", "--real", real, "--synthetic", syn, "--readers", "1",
                    "--trials-per-reader", str(n), "--mode", "volumes", "--size", str(nx), str(ny), str(nz),
                    "--spacing", str(spacing[0]), str(spacing[1]), str(spacing[2]), "--out", study],
                   check=True, capture_output=True)
    return study


def page_rss_peak_mib(gateway_pid):
    """Peak resident memory (VmHWM) of the gateway's child processes (the page processes)."""
    peaks = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != gateway_pid:
                continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024.0)
        except (OSError, ValueError, IndexError):
            continue
    return max(peaks) if peaks else float("nan")


def measure(study, work, steps):
    from playwright.sync_api import sync_playwright

    served = ServedStudy(study, work).start()
    try:
        with sync_playwright() as pw:
            chromium = browser(pw)
            page = chromium.new_page(viewport={"width": 1100, "height": 800})
            page.goto(served.links["R01"])
            page.wait_for_function("() => document.querySelector('#cms-progress')?.innerText.trim() === '1 / 4'",
                                   timeout=300_000)
            page.wait_for_timeout(2000)
            page.evaluate(WATCH_JS)
            box = page.locator("#cms-view").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            step_ms = []
            for k in range(steps):
                n_before = page.evaluate("() => window.__cms.imgAt.length")
                page.mouse.wheel(0, 120 if k % 2 == 0 else -120)
                page.wait_for_function(f"() => window.__cms.imgAt.length > {n_before}", timeout=10_000)
                page.wait_for_timeout(300)  # let the interactive frame's follow-up (full quality) pass
                step_ms.append(page.evaluate(f"() => window.__cms.imgAt[{n_before}] - window.__cms.wheelAt"))
            enter_ms = []
            for k in range(3):
                n_img = page.evaluate("() => window.__cms.imgAt.length")
                n_prog = page.evaluate("() => window.__cms.progressAt.length")
                page.keyboard.press("r")
                page.keyboard.press("3")
                page.keyboard.press("Enter")
                page.wait_for_function(f"() => window.__cms.imgAt.length > {n_img} && "
                                       f"window.__cms.progressAt.length > {n_prog}", timeout=30_000)
                enter_ms.append(page.evaluate(
                    f"() => Math.max(window.__cms.imgAt[{n_img}], window.__cms.progressAt[{n_prog}]) - "
                    "window.__cms.enterAt"))
                page.wait_for_timeout(500)
            rss = page_rss_peak_mib(served.proc.pid)
            chromium.close()
    finally:
        served.stop()
    return {"slice_step_ms": step_ms, "enter_to_next_ms": enter_ms, "page_process_peak_rss_mib": rss}


def summary(values):
    return {"median": statistics.median(values), "max": max(values)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    results = {"cpu": cpu_model(), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape, spacing in (("reference_128x128x25", (25, 128, 128), (2.5, 2.5, 4.0)),
                                     ("ct_512x512x100", (100, 512, 512), (0.8, 0.8, 3.0))):
            root = os.path.join(tmp, name)
            os.makedirs(root)
            t = time.perf_counter()
            study = make_study(root, shape, spacing)
            made = time.perf_counter() - t
            r = measure(study, os.path.join(root, "srv"), args.steps)
            r["study_created_s"] = round(made, 1)
            results[name] = r
    big, ref = results["ct_512x512x100"], results["reference_128x128x25"]
    print(f"CPU: {results['cpu']} ({results['cores']} cores)")
    for name in ("reference_128x128x25", "ct_512x512x100"):
        r = results[name]
        s, e = summary(r["slice_step_ms"]), summary(r["enter_to_next_ms"])
        print(f"{name}: slice step median {s['median']:.0f} ms (max {s['max']:.0f}), Enter -> next trial median "
              f"{e['median']:.0f} ms (max {e['max']:.0f}), page process peak RSS {r['page_process_peak_rss_mib']:.0f} MiB")
    ratio_step = statistics.median(big["slice_step_ms"]) / statistics.median(ref["slice_step_ms"])
    ratio_enter = statistics.median(big["enter_to_next_ms"]) / statistics.median(ref["enter_to_next_ms"])
    results["ratios_vs_reference"] = {"slice_step": ratio_step, "enter_to_next": ratio_enter}
    print(f"512 x 512 x 100 vs reference: slice step {ratio_step:.2f}x, Enter -> next {ratio_enter:.2f}x "
          "(targets: slice step <= 150 ms, Enter -> next <= 1000 ms)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
