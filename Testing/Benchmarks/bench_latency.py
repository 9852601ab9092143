"""Interactive latency: a cold ``cmsynth run`` against the first and second request to one
``cmsynth worker``, on the ``make demo`` case, in one run; plus cold ``cmsynth --help`` and
``cmsynth models list``.

Not a test. Prints wall times, each as a ratio to the cold run, and the warm request's wall time
as a ratio to the work the command reports (``timings_s.total`` of its summary: reading, synthesis,
liver, metrics, writing, overlays; no start-up, no model loading), with the CPU model. Run:

    .venv/bin/python Testing/Benchmarks/bench_latency.py [--rounds 2] [--json FILE]

(the phantom case is made in a temporary folder: CHAOS size, seed 2000, as ``make demo``).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

CMSYNTH = os.path.join(os.path.dirname(sys.executable), "cmsynth")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="bench-latency-")
    subprocess.run([CMSYNTH, "phantom", "--out", os.path.join(folder, "ph"), "--cases", "1", "--seed", "2000",
                    "--size", "chaos"], check=True, capture_output=True)
    case = os.path.join(folder, "ph", "case_000")
    rows = {"cold_run": [], "worker_first": [], "worker_second": [], "help": [], "models_list": [],
            "work_cold": [], "work_second": []}
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
    med = {k: statistics.median(v) for k, v in rows.items()}
    result = {"cpu": cpu_model(), "cores": os.cpu_count(), "rounds": args.rounds, "median_s": med, "all_s": rows,
              "ratio_to_cold_run": {k: med[k] / med["cold_run"] for k in ("worker_first", "worker_second", "help",
                                                                          "models_list")},
              "warm_over_reported_work": med["worker_second"] / med["work_second"]}
    print("CPU: {} ({} cores)".format(result["cpu"], result["cores"]))
    for k in ("cold_run", "worker_first", "worker_second", "help", "models_list"):
        print("  {:<14} {:6.2f} s  ({:.2f}x the cold run)".format(k, med[k], med[k] / med["cold_run"]))
    print("  work the command reports: cold {:.2f} s, warm {:.2f} s; warm request / its work: {:.2f}x".format(
        med["work_cold"], med["work_second"], result["warm_over_reported_work"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
