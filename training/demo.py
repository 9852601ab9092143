"""Rebuild the demo bundles shipped in ``CrossModalitySynth/Resources/Models/`` (CPU, ~40 minutes).

``python -m training.demo all`` runs, from the repository root:

1. ``data``: 12 small phantom training cases (seeds 1000-1011) and 3 held-out cases
   (seeds 9000-9002) under ``demo_output/training/``;
2. ``train``: the four ``training/configs/demo_*.yaml`` runs one after another;
3. ``export``: each final checkpoint -> ``Resources/Models/<id>/`` with its held-out phantom
   metrics (measured by loading the written bundle like the inference engine), and the
   ``Resources/Models.json`` entries (sha256 of each spec.json, total size).

``python -m training.demo train t2`` or ``export essnet`` redo one model.
"""

import argparse
import os
import sys
from typing import List

from CrossModalitySynthLib.errors import CMSynthError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join("demo_output", "training")
TRAIN = os.path.join(BASE, "phantom_train")
HELDOUT = os.path.join(BASE, "phantom_heldout")
HELDOUT_CASES = ["case_000", "case_001", "case_002"]
RESOURCES = os.path.join(ROOT, "CrossModalitySynth", "Resources")
MODELS = {
    "t1dual": "demo_t1dual_to_ct.yaml",
    "t2": "demo_t2_to_ct.yaml",
    "essnet": "demo_ct_to_t1in_essnet.yaml",
    "unet": "demo_liver_unet_t1in.yaml",
}


def _config(name: str):
    from .config import load_config
    import yaml

    path = os.path.join(ROOT, "training", "configs", MODELS[name])
    with open(path, "r", encoding="utf-8") as f:
        task = yaml.safe_load(f)["task"]
    return load_config(path, task)


def make_data(n_train: int = 12) -> None:
    from CrossModalitySynthLib.phantom import write_cases

    if not os.path.isdir(TRAIN):
        write_cases(TRAIN, n_cases=n_train, seed=1000, size="small")
    if not os.path.isdir(HELDOUT):
        write_cases(HELDOUT, n_cases=len(HELDOUT_CASES), seed=9000, size="small")


def run_dir(name: str) -> str:
    return os.path.join(BASE, "runs", name)


def train_one(name: str) -> None:
    from .trainer import train

    cfg = _config(name)
    last = os.path.join(run_dir(name), "checkpoints", "last.pt")
    train(cfg, run_dir(name), resume=last if os.path.isfile(last) else None)


def export_one(name: str) -> dict:
    from .export import export_checkpoint, registry_entry, update_registry

    cfg = _config(name)
    bundle = os.path.join(RESOURCES, "Models", cfg.export.id)
    os.makedirs(os.path.dirname(bundle), exist_ok=True)
    export_checkpoint(os.path.join(run_dir(name), "checkpoints", "last.pt"), bundle,
                      eval_root=HELDOUT, eval_cases=HELDOUT_CASES, overwrite=True,
                      description=cfg.export.description)  # the config's current text, not the one in the checkpoint
    entry = registry_entry(bundle, "Models/{}".format(cfg.export.id))
    update_registry(os.path.join(RESOURCES, "Models.json"), [entry])
    return entry


def main(argv: List[str] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.demo", description=__doc__.splitlines()[0])
    p.add_argument("step", choices=["data", "train", "export", "all"])
    p.add_argument("models", nargs="*", help="any of {} (default: all four)".format(", ".join(MODELS)))
    args = p.parse_args(argv)
    names = args.models or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        p.error("unknown model(s) {}; use {}".format(", ".join(unknown), ", ".join(MODELS)))
    try:
        if args.step in ("data", "all"):
            make_data()
        if args.step in ("train", "all"):
            for n in names:
                train_one(n)
        if args.step in ("export", "all"):
            for n in names:
                e = export_one(n)
                print("{id}: {size} bytes, sha256(spec.json) {sha256}".format(**e))
    except CMSynthError as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
