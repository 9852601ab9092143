"""Command line: ``python -m cmsynth_training <task> --config FILE [--out DIR] [--resume CKPT] [--set key=value ...]``.

Tasks: ``cyclegan``, ``essnet``, ``unet``, ``augment``; plus ``export`` (checkpoint -> model
bundle) and ``evaluate`` (held-out phantom metrics of a bundle). Under ``torchrun`` every
process runs this same command. A user error prints one sentence (``error: ...``) without a
traceback and exits with status 1 (2 for a usage error).
"""

import argparse
import json
import os
import sys
import time
from typing import List, Optional

from CrossModalitySynthLib.errors import CMSynthError

TRAIN_TASKS = ("cyclegan", "essnet", "unet", "augment")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cmsynth_training",
        description="Train CycleGAN (MRI <-> CT), EssNet (CT -> MRI + liver), the liver U-Net, run the "
        "augmentation experiment, or export a checkpoint to a model bundle.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text in (
        ("cyclegan", "unpaired CycleGAN MRI <-> CT (reference settings)"),
        ("essnet", "EssNet: CT (with liver labels) -> MRI with segmentation loss"),
        ("unet", "liver U-Net on MRI (MONAI, Dice + cross-entropy)"),
        ("augment", "U-Net on real vs real + synthetic MRI, several seeds, paired statistics; refused when a test "
                    "patient was seen in training (translator or either U-Net arm) or train.steps_per_epoch is unset"),
    ):
        s = sub.add_parser(name, help=help_text)
        s.add_argument("--config", required=True, help="YAML configuration (see training/configs/)")
        s.add_argument("--out", help="run folder (default: runs/<task>-<date-time>; with --resume: the checkpoint's run)")
        if name != "augment":
            s.add_argument("--resume", metavar="CKPT", help="continue exactly from a checkpoint (e.g. OUT/checkpoints/last.pt)")
        s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config value, e.g. --set train.lr=0.0001 (repeatable)")
        s.add_argument("--export", metavar="BUNDLE", help="after training, export the final checkpoint to this bundle folder")
        s.add_argument("--quiet", action="store_true", help="no progress bar")
    e = sub.add_parser("export", help="checkpoint -> model bundle (spec.json + weights.pt + model.onnx)")
    e.add_argument("checkpoint", help="a training checkpoint (.pt)")
    e.add_argument("--out", required=True, help="bundle folder to write")
    e.add_argument("--id", help="bundle id (default: export.id of the config)")
    e.add_argument("--version", help="bundle version (default: export.version)")
    e.add_argument("--description", help="bundle description (default: export.description)")
    e.add_argument("--network", choices=["A", "B"], default="A", help="A: G_A (default); B: the reverse generator")
    e.add_argument("--eval-root", help="phantom folder with held-out cases: record their metrics (and, for MR->CT, "
                   "the bf16 quality gate read by --precision auto) in the spec")
    e.add_argument("--eval-cases", help="comma-separated held-out case names (e.g. case_000,case_001,case_002)")
    e.add_argument("--no-onnx", action="store_true", help="do not write model.onnx")
    e.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    v = sub.add_parser("evaluate", help="held-out phantom metrics of a bundle (JSON on stdout)")
    v.add_argument("bundle", help="model bundle folder")
    v.add_argument("--data", required=True, help="phantom folder")
    v.add_argument("--cases", required=True, help="comma-separated case names")
    return p


def _default_out(task: str, resume: Optional[str]) -> str:
    if resume:
        return os.path.dirname(os.path.dirname(os.path.abspath(resume)))
    return os.path.join("runs", "{}-{}".format(task, time.strftime("%Y%m%d-%H%M%S")))


def _split(text: Optional[str]) -> List[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def run(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in TRAIN_TASKS:
        from .config import load_config

        cfg = load_config(args.config, args.command, args.overrides)
        if args.quiet:
            cfg.train.progress = False
        resume = getattr(args, "resume", None)
        out = args.out or _default_out(args.command, resume)
        if args.command == "augment":
            from .augment import run_augment

            report = run_augment(cfg, out)
            print(report)
            return 0
        from .trainer import train

        result = train(cfg, out, resume=resume)
        if args.export and result.checkpoint:
            from .export import export_checkpoint

            export_checkpoint(result.checkpoint, args.export, overwrite=True)
            print(args.export)
        if result.checkpoint:
            print(result.checkpoint)
        return 0
    if args.command == "export":
        from .export import export_checkpoint

        path = export_checkpoint(
            args.checkpoint,
            args.out,
            bundle_id=args.id,
            version=args.version,
            description=args.description,
            network=args.network,
            eval_root=args.eval_root,
            eval_cases=_split(args.eval_cases),
            overwrite=args.overwrite,
            onnx=not args.no_onnx,
        )
        print(path)
        return 0
    if args.command == "evaluate":
        from .validation import evaluate_bundle

        print(json.dumps(evaluate_bundle(args.bundle, args.data, _split(args.cases)), indent=2))
        return 0
    return 2  # pragma: no cover


def main(argv: Optional[List[str]] = None) -> int:
    try:
        return run(argv)
    except CMSynthError as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return int(getattr(exc, "exit_code", 1)) or 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
