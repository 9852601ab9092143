"""CPU throughput of the default ResNet-9 generator (2 -> 1 channels, ngf 64), fp32 eager.

Not a test: prints slices/s for batch 8 at 256x256 with 2 threads (REFERENCE.md section 8
measured 0.85-1.0 slices/s on these machines). Run:

    .venv/bin/python Testing/Benchmarks/bench_generator.py [--threads 2] [--batch 8] [--size 256] [--reps 3]
"""

import argparse
import time

import torch

from CrossModalitySynthLib.networks import NetworkConfig, build_generator


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--in-channels", type=int, default=2)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = build_generator(NetworkConfig(kind="resnet_generator", in_channels=args.in_channels, out_channels=1)).eval()
    x = torch.rand(args.batch, args.in_channels, args.size, args.size) * 2 - 1

    with torch.inference_mode():
        g(x)  # warm-up (allocator, oneDNN primitive cache)
        times, cpu = [], []
        for _ in range(args.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            g(x)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    best, mean = min(times), sum(times) / len(times)
    print(
        "ResNet-9 {}->1 ngf64, {}x{}x{}, {} threads, torch {}: batch {:.2f} s best / {:.2f} s mean; "
        "{:.2f} slices/s best, {:.2f} slices/s mean".format(
            args.in_channels, args.batch, args.size, args.size, torch.get_num_threads(), torch.__version__,
            best, mean, args.batch / best, args.batch / mean,
        )
    )
    # CPU seconds per wall second: close to --threads on an idle machine; much lower means
    # other processes took the cores and the wall-clock numbers above are pessimistic.
    print("cpu/wall ratio {:.2f} (threads {})".format(sum(cpu) / sum(times), args.threads))


if __name__ == "__main__":
    main()
