"""Rebuild the demo bundles shipped in ``CrossModalitySynth/Resources/Models/`` (CPU, a few hours).

``python -m cmsynth_training.demo all`` runs, from the repository root:

1. ``data``: 24 CHAOS-size phantom training cases (seeds 1000-1023) and 3 held-out cases
   (seeds 9000-9002, CHAOS size) under ``demo_output/training/``;
2. ``train``: the four ``training/configs/demo_*.yaml`` runs one after another (each checkpoints
   every 200 steps; ``train`` again resumes a stopped run exactly);
3. ``export``: each final checkpoint -> ``Resources/Models/<id>/`` with its held-out phantom
   metrics (measured by loading the written bundle like the inference engine; for the MR->CT
   models also the bf16 quality gate that ``--precision auto`` reads), and the
   ``Resources/Models.json`` entries (sha256 of each spec.json, total size).

``python -m cmsynth_training.demo train t2`` or ``export essnet`` redo one model.

``python -m cmsynth_training.demo gate [t1dual t2]`` measures the bf16 quality gate of the already exported
MR->CT demo bundles on the held-out cases (written first if missing) and records it in their
``spec.json`` (``metrics.bf16_gate``; the weights are not touched), then updates their
``Resources/Models.json`` entries (sha256 of spec.json, size). Run it again after a change to the
bf16 runner: ``--precision auto`` uses bf16 only with a passing record for the runner in use.
``--resources`` and ``--heldout`` point it at other folders.

``python -m cmsynth_training.demo targets [t1dual t2 unet essnet]`` measures the held-out figures
of :mod:`.demo_targets` (through ``cmsynth run`` / ``synthesize`` / ``segment``) and records them in
the bundles' ``spec.json`` (``metrics.held_out_targets``) and ``Models.json`` entries.
"""

import argparse
import os
import sys
from typing import List, Sequence

from CrossModalitySynthLib.errors import CMSynthError, ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout
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
#: The MR->CT demo models, the ones with a bf16 quality gate.
GATED = ("t1dual", "t2")


def _config(name: str, check_paths: bool = True):
    from .config import load_config
    import yaml

    path = os.path.join(ROOT, "training", "configs", MODELS[name])
    with open(path, "r", encoding="utf-8") as f:
        task = yaml.safe_load(f)["task"]
    return load_config(path, task, check_paths=check_paths)


def make_data(n_train: int = 24) -> None:
    from CrossModalitySynthLib.phantom import write_cases

    if not os.path.isdir(TRAIN):
        write_cases(TRAIN, n_cases=n_train, seed=1000, size="chaos")
    make_heldout()


def make_heldout(heldout: str = HELDOUT) -> None:
    """The held-out cases (seeds 9000-9002, CHAOS size), written when ``heldout`` does not exist."""
    from CrossModalitySynthLib.phantom import write_cases

    if not os.path.isdir(heldout):
        write_cases(heldout, n_cases=len(HELDOUT_CASES), seed=9000, size="chaos")


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


def _rewrite_spec(bundle_id: str, resources: str, metrics: dict) -> None:
    """Merge ``metrics`` into the exported bundle's ``spec.json`` metrics (weights untouched) and
    refresh its ``Models.json`` entry (sha256 of spec.json, size)."""
    from CrossModalitySynthLib.registry import load_bundle, write_bundle_spec

    from .export import registry_entry, update_registry

    folder = os.path.join(resources, "Models", bundle_id)
    bundle = load_bundle(folder)  # verified: the weights are the ones the spec pins
    spec = bundle.contract.to_dict()
    spec["metrics"] = dict(spec.get("metrics") or {})
    spec["metrics"].update(metrics)
    present = {os.path.relpath(os.path.join(r, f), folder).replace(os.sep, "/")
               for r, _, fs in os.walk(folder) for f in fs}
    extra = sorted(f for f in present if f != "spec.json" and not f.startswith(".") and f not in spec["files"])
    if extra:  # write_bundle_spec would pin them too
        raise ConfigError("{} holds files its spec does not list ({}); remove them and run again.".format(
            folder, ", ".join(extra)))
    write_bundle_spec(folder, spec)
    update_registry(os.path.join(resources, "Models.json"), [registry_entry(folder, "Models/{}".format(bundle_id))])


def gate_one(name: str, resources: str = RESOURCES, heldout: str = HELDOUT,
             cases: Sequence[str] = tuple(HELDOUT_CASES)) -> dict:
    """Measure the bf16 gate of an exported MR->CT demo bundle, rewrite its spec.json (weights
    untouched) and its Models.json entry; returns the gate record."""
    from CrossModalitySynthLib.inference.precision import bundle_gate, merge_gate
    from CrossModalitySynthLib.registry import Direction, load_bundle

    from .export import measure_gate

    if name not in GATED:
        raise ConfigError("The bf16 gate is measured on the MR->CT demo models ({}) only, not {}.".format(
            ", ".join(GATED), name))
    bundle_id = _config(name, check_paths=False).export.id  # the training data need not exist
    folder = os.path.join(resources, "Models", bundle_id)
    bundle = load_bundle(folder)
    if bundle.direction != Direction.MR_TO_CT:
        raise ConfigError("{} is a {} bundle; the bf16 gate is measured on MR->CT bundles only.".format(
            bundle_id, bundle.direction))
    make_heldout(heldout)
    record = measure_gate(folder, heldout, list(cases))
    _rewrite_spec(bundle_id, resources, {"bf16_gate": merge_gate(bundle_gate(bundle.contract.raw), record)})
    return record


def targets(names: Sequence[str], resources: str = RESOURCES, heldout: str = HELDOUT,
            cases: Sequence[str] = tuple(HELDOUT_CASES)) -> dict:
    """Measure the held-out target figures (:mod:`.demo_targets`, through ``cmsynth``) of the
    exported demo bundles and record each bundle's in its spec.json (``metrics.held_out_targets``)."""
    from .demo_targets import TARGETS, measure

    make_heldout(heldout)
    figures = measure(heldout, list(cases), list(names))
    for bundle_id, values in figures.items():
        _rewrite_spec(bundle_id, resources, {"held_out_targets": {
            **values, "cases": list(cases), "measured_by": "python -m cmsynth_training.demo targets (cmsynth run / "
            "synthesize / segment on the held-out CHAOS-size phantom cases)", "targets": TARGETS}})
    return figures


def main(argv: List[str] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cmsynth_training.demo", description=__doc__.splitlines()[0])
    p.add_argument("step", choices=["data", "train", "export", "gate", "targets", "all"],
                   help="gate: re-measure the bf16 quality gate of the exported MR->CT bundles and rewrite only their "
                        "spec.json and Models.json entries (export already measures it)")
    p.add_argument("models", nargs="*", help="any of {} (default: all four; gate: {})".format(
        ", ".join(MODELS), ", ".join(GATED)))
    p.add_argument("--resources", default=RESOURCES,
                   help="gate, targets: folder with Models.json and Models/<id>/ (default: the extension's Resources)")
    p.add_argument("--heldout", default=HELDOUT, help="gate, targets: held-out phantom cases (default: {})".format(HELDOUT))
    p.add_argument("--cases", default=",".join(HELDOUT_CASES),
                   help="gate, targets: comma-separated held-out case folders (default: {})".format(",".join(HELDOUT_CASES)))
    args = p.parse_args(argv)
    names = args.models or (list(GATED) if args.step == "gate" else list(MODELS))
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
        if args.step == "targets":
            for bundle_id, f in targets(names, args.resources, args.heldout,
                                        [c for c in args.cases.split(",") if c]).items():
                print(bundle_id + ": " + ", ".join("{} {:.3f}".format(k, v) for k, v in f.items()))
        if args.step == "gate":
            cases = [c for c in args.cases.split(",") if c]
            for n in names:
                r = gate_one(n, args.resources, args.heldout, cases)
                print("{}: bf16 gate {} on {} ({}, runner {}): mean {:.3f} HU, p99 {:.3f} HU, max {:.1f} HU".format(
                    n, "passed" if r["passed"] else "FAILED", r["device"], r.get("cpu_bf16", ""), r["runner_path"],
                    r["mean_hu"], r["p99_hu"], r["max_hu"]))
    except CMSynthError as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
