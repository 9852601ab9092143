"""Interactive latency: a cold ``cmsynth run`` against the first and second request to one
``cmsynth worker``, on the ``make demo`` case, in one run; plus cold ``cmsynth --help`` and
``cmsynth models list``, and the Slicer Logic's Apply, first and second, on a real MRML scene.

Not a test. Prints wall times, each as a ratio to the cold run, and the warm request's wall time
as a ratio to the work the command reports (``timings_s.total`` of its summary: reading, synthesis,
liver, metrics, writing, overlays; no start-up, no model loading), with the CPU model. Run:

    .venv/bin/python Testing/Benchmarks/bench_latency.py [--rounds 2] [--json FILE]

(the phantom case is made in a temporary folder: CHAOS size, seed 2000, as ``make demo``).

The Slicer figures come from the headless Slicer of the test suite (``Testing/slicer_headless``:
slicer-core's real MRML scene, Slicer's own Python layer of ``--slicer-tag`` from
``../shared/slicer-reference``, the module file and its Logic), in a process of its own: two
``CrossModalitySynthLogic.run`` calls on one Logic, each timed from the start of the job (export
of the input nodes) to the results imported into the scene. The Logic sends what the panel sends
(synthesis and liver, no reference CT, no overlays), so its work is a little less than the cold
run's, which also computes the metrics against the phantom's CT.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CMSYNTH = os.path.join(os.path.dirname(sys.executable), "cmsynth")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # Testing/

from testsupport.machine import cpu_model  # noqa: E402
TESTING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE_DIR = os.path.join(os.path.dirname(TESTING), "CrossModalitySynth")

SLICER_APPLY = r"""
import json, os, sys, time
from slicer_headless.environment import HeadlessSlicer

tag, workdir, case = sys.argv[1:4]
h = HeadlessSlicer(tag, workdir)
h.load_module()
h.startup_completed()
from CrossModalitySynthLib.slicer_support.synthesis import SynthesisRequest

t1in = h.load_volume(os.path.join(case, "t1_in.nii.gz"), "T1 in-phase")
t1opp = h.load_volume(os.path.join(case, "t1_opp.nii.gz"), "T1 opposed-phase")
logic = h.pymodule.CrossModalitySynthLogic()
out = {"s": [], "already_loaded": [], "worker_pids": []}
for _ in range(2):
    request = SynthesisRequest("demo-t1dual-to-ct", {"t1_in": t1in, "t1_opp": t1opp},
                               liver_model="demo-liver-unet-t1in")
    t = time.perf_counter()
    result = logic.run(request, timeout=900)
    out["s"].append(time.perf_counter() - t)
    if result.status != "succeeded":
        print("Apply failed: " + result.message, file=sys.stderr)
        os._exit(1)
    out["already_loaded"].append(result.models_already_loaded)
    out["worker_pids"].append(logic._worker.pid)
logic.cleanup()
print("BENCH " + json.dumps(out), flush=True)
os._exit(0)  # as the headless scenarios do: no interpreter teardown of VTK objects
"""


def wall(argv, stdin=None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)
    return time.perf_counter() - t


def run_args(case, out):
    return ["--model", "demo-t1dual-to-ct", "--liver-model", "demo-liver-unet-t1in", "--reference-ct",
            os.path.join(case, "ct_on_mr.nii.gz"), "--out", out, "--overwrite",
            os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz")]


def work_seconds(summary_path) -> float:
    """The case's own time as summary.json reports it (``total``: reading to writing, no start-up
    and no model loading)."""
    with open(summary_path) as f:
        t = json.load(f)["timings_s"]
    return float(t["total"])


def worker_round(case, folder):
    """Two identical requests to one fresh worker: wall time of each, from request to answer."""
    proc = subprocess.Popen([CMSYNTH, "worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, bufsize=1)
    times, works = [], []
    try:
        for i in range(2):
            out = os.path.join(folder, "w{}".format(i))
            req = {"id": str(i), "command": "run",
                   "args": {"model": "demo-t1dual-to-ct", "liver_model": "demo-liver-unet-t1in",
                            "reference_ct": os.path.join(case, "ct_on_mr.nii.gz"), "out": out, "overwrite": True,
                            "inputs": [os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz")]}}
            t = time.perf_counter()
            proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            while True:
                obj = json.loads(proc.stdout.readline())
                if obj.get("stage") == "error":
                    raise RuntimeError(obj["error"])
                if obj.get("stage") == "done":
                    break
            times.append(time.perf_counter() - t)
            works.append(work_seconds(os.path.join(out, "summary.json")))
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    return times, works


def slicer_round(case, folder, tag):
    """The Slicer Logic's first and second Apply on one Logic (one worker), in a headless Slicer:
    ([first s, second s], the models the second found already loaded)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTING, MODULE_DIR]))
    proc = subprocess.run([sys.executable, "-c", SLICER_APPLY, tag, os.path.join(folder, "slicer"), case],
                          capture_output=True, text=True, env=env, cwd=folder, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError("the headless Slicer run failed:\n" + proc.stderr[-4000:])
    out = json.loads(lines[-1][len("BENCH "):])
    if out["worker_pids"][0] != out["worker_pids"][1] or not out["already_loaded"][1]:
        raise RuntimeError(f"the second Apply did not reuse the worker and its models: {out}")
    return out["s"], out["already_loaded"][1]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--slicer-tag", default="v5.12.3", help="Slicer Python layer of the Logic's Apply (default v5.12.3)")
    args = ap.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="bench-latency-")
    subprocess.run([CMSYNTH, "phantom", "--out", os.path.join(folder, "ph"), "--cases", "1", "--seed", "2000",
                    "--size", "chaos"], check=True, capture_output=True)
    case = os.path.join(folder, "ph", "case_000")
    rows = {"cold_run": [], "worker_first": [], "worker_second": [], "help": [], "models_list": [],
            "work_cold": [], "work_second": [], "slicer_first": [], "slicer_second": []}
    already_loaded = []
    for _ in range(args.rounds):  # alternate, so a change of machine load hits every figure
        out = os.path.join(folder, "cold")
        rows["cold_run"].append(wall([CMSYNTH, "run"] + run_args(case, out)))
        rows["work_cold"].append(work_seconds(os.path.join(out, "summary.json")))
        (first, second), (_, work2) = worker_round(case, folder)
        rows["worker_first"].append(first)
        rows["worker_second"].append(second)
        rows["work_second"].append(work2)
        rows["help"].append(wall([CMSYNTH, "--help"]))
        rows["models_list"].append(wall([CMSYNTH, "models", "list"]))
        (s1, s2), already_loaded = slicer_round(case, folder, args.slicer_tag)
        rows["slicer_first"].append(s1)
        rows["slicer_second"].append(s2)
    med = {k: statistics.median(v) for k, v in rows.items()}
    result = {"cpu": cpu_model(), "cores": os.cpu_count(), "rounds": args.rounds, "median_s": med, "all_s": rows,
              "ratio_to_cold_run": {k: med[k] / med["cold_run"] for k in ("worker_first", "worker_second", "help",
                                                                          "models_list", "slicer_first",
                                                                          "slicer_second")},
              "slicer_tag": args.slicer_tag, "slicer_second_models_already_loaded": already_loaded,
              "warm_over_reported_work": med["worker_second"] / med["work_second"]}
    print("CPU: {} ({} cores)".format(result["cpu"], result["cores"]))
    for k in ("cold_run", "worker_first", "worker_second", "help", "models_list", "slicer_first", "slicer_second"):
        print("  {:<14} {:6.2f} s  ({:.2f}x the cold run)".format(k, med[k], med[k] / med["cold_run"]))
    print("  work the command reports: cold {:.2f} s, warm {:.2f} s; warm request / its work: {:.2f}x".format(
        med["work_cold"], med["work_second"], result["warm_over_reported_work"]))
    print("  Slicer Logic ({}): second Apply found loaded: {}".format(args.slicer_tag, ", ".join(already_loaded)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
