"""Benchmark of the digital phantom: seconds to render and write one case (not a test).

Usage::

    python Testing/Benchmarks/bench_phantom.py [--sizes small chaos] [--repeat N] [--seed S]

Runs on one core (BLAS / OpenMP / ITK threads limited to 1 before anything is imported) and
prints, per size, the best wall time of ``make_case`` (render CT + MRI), of writing the case
folder, their sum, the CPU time, and the ratio to the target (small: 2 s, chaos: 20 s per case).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import SimpleITK as sitk  # noqa: E402

from CrossModalitySynthLib.phantom import make_case, write_case  # noqa: E402

TARGET_S = {"small": 2.0, "chaos": 20.0}


def bench(size: str, repeat: int, seed: int) -> dict:
    best = None
    tmp = tempfile.mkdtemp(prefix="bench_phantom_")
    try:
        for i in range(repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            case = make_case(seed + i, size=size)
            t1 = time.perf_counter()
            write_case(case, os.path.join(tmp, f"case_{i:03d}"))
            t2, c2 = time.perf_counter(), time.process_time()
            row = {"make": t1 - t0, "write": t2 - t1, "total": t2 - t0, "cpu": c2 - c0}
            if best is None or row["total"] < best["total"]:
                best = row
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "chaos"], choices=sorted(TARGET_S))
    parser.add_argument("--repeat", type=int, default=0, help="cases per size (default: small 3, chaos 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    print(f"{'size':6s} {'make_s':>8s} {'write_s':>8s} {'total_s':>8s} {'cpu_s':>8s} {'target_s':>8s} {'ratio':>6s}")
    for size in args.sizes:
        n = args.repeat or (3 if size == "small" else 1)
        r = bench(size, n, args.seed)
        ratio = r["total"] / TARGET_S[size]
        print(f"{size:6s} {r['make']:8.2f} {r['write']:8.2f} {r['total']:8.2f} {r['cpu']:8.2f} "
              f"{TARGET_S[size]:8.1f} {ratio:6.2f}")


if __name__ == "__main__":
    main()
