"""CycleGAN training step: the batched step (``train.batched_step: true``, the default) against
the reference's separate calls, from the same weights on the same batches, in one run.

Not a test. Rounds alternate the two steps, so a change in machine load hits both; the ratio
is batched / reference seconds per step (below 1 = faster), with the CPU model printed beside
it. Run:

    .venv/bin/python Testing/Benchmarks/bench_train_step.py [--size 256] [--ngf 64] [--blocks 9]
        [--batch 1] [--channels 1] [--steps 3] [--rounds 3] [--threads 2] [--json FILE]

Defaults are the paper's networks at 256 x 256 crops; ``--channels 1`` (T1 in-phase -> CT) has
the identity term, 2 (in + opposed phase) has not.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from testsupport.machine import cpu_model  # noqa: E402


def build(root, cache, args, batched):
    from testsupport.training import tiny_dict
    from cmsynth_training.config import config_from_dict
    from cmsynth_training.trainer import build_task

    seqs = ["t1_in", "t1_opp"][:args.channels]
    d = tiny_dict("cyclegan", root, cache,
                  data={"mr_sequences": seqs, "grid": {"spacing": [1.5, 1.5, None]},
                        "load_size": args.size, "crop_size": args.size},
                  model={"ngf": args.ngf, "n_blocks": args.blocks, "ndf": 64, "n_layers": 3},
                  train={"batch_size": args.batch, "batched_step": batched, "num_threads": args.threads})
    return build_task(config_from_dict(d, "cyclegan"), cache_dir=cache)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--channels", type=int, default=1, choices=(1, 2))
    ap.add_argument("--steps", type=int, default=3, help="steps per round and variant")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from testsupport.training import _write_phantom
    from cmsynth_training.data import EpochSampler

    work = tempfile.mkdtemp(prefix="bench-step-")
    root = _write_phantom(os.path.join(work, "phantom"))
    cache = os.path.join(work, "cache")
    ref, bat = build(root, cache, args, False), build(root, cache, args, True)
    for name, net in ref.nets.items():
        bat.nets[name].load_state_dict(net.state_dict())
    ref.setup_training()
    bat.setup_training()
    sampler = EpochSampler(ref.dataset, 1, 0, 0, args.batch)
    sampler.set_epoch(0)
    keys = list(sampler)
    batches = []
    for i in range(args.steps):
        items = [ref.dataset[k] for k in keys[(i * args.batch) % len(keys):][:args.batch]]
        batches.append({k: torch.stack([it[k] for it in items]) for k in ("A", "B")})

    first = {}
    times = {"reference": [], "batched": []}
    for task, name in ((ref, "reference"), (bat, "batched")):  # warm-up, and the first losses
        first[name] = {k: float(v) for k, v in task.train_step(batches[0]).items()}
    for _ in range(args.rounds):
        for task, name in ((ref, "reference"), (bat, "batched")):
            t0 = time.perf_counter()
            for b in batches:
                task.train_step(b)
            times[name].append((time.perf_counter() - t0) / len(batches))
    best = {k: min(v) for k, v in times.items()}
    result = {
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": args.threads,
        "setting": vars(args),
        "identity_term": ref.identity,
        "seconds_per_step_best": best,
        "seconds_per_step_all": times,
        "ratio_batched_over_reference": best["batched"] / best["reference"],
        "first_step_losses_identical": first["reference"] == first["batched"],
    }
    print("CPU: {} ({} threads), torch {}".format(result["cpu"], args.threads, torch.__version__))
    print("setting: {}x{} crops, batch {}, ngf {}, {} blocks, {} MRI channel(s), identity term {}".format(
        args.size, args.size, args.batch, args.ngf, args.blocks, args.channels, "on" if ref.identity else "off"))
    for name in ("reference", "batched"):
        print("  {:<9} {:.3f} s/step (best of {} rounds; all {})".format(
            name, best[name], args.rounds, ", ".join("{:.3f}".format(t) for t in times[name])))
    print("  ratio batched / reference: {:.2f}x; first-step losses identical: {}".format(
        result["ratio_batched_over_reference"], result["first_step_losses_identical"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
