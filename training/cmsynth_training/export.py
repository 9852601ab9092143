"""Export a training checkpoint to a model bundle the Slicer module and ``cmsynth`` can load.

``python -m cmsynth_training export CHECKPOINT --out BUNDLE`` writes, into a temporary folder that is
renamed to ``BUNDLE`` only when complete:

- ``weights.pt``: the deployable network's ``state_dict`` (``torch.load(..., weights_only=True)``);
- ``model.onnx``: the same network in ONNX (dynamic batch, H, W), checked against torch on a
  random input with ONNX Runtime (the largest difference is recorded in the spec);
- ``spec.json`` (via :func:`CrossModalitySynthLib.registry.write_bundle_spec`, which pins both
  files by sha256): direction, inputs, output, network, preprocessing (the model grid used in
  training), training (data, epochs, steps, wall time, device, width note), training_range (the
  training volumes' spacing range, body size and normalised body-intensity histograms, measured
  by :func:`measure_training_range`; the engine compares every input with it), metrics (the last
  validation and, with ``--eval-root``, held-out phantom metrics measured by loading the written
  bundle exactly as the inference engine does; for MR->CT models also ``bf16_gate``, the bf16
  quality gate measured on the same held-out cases, which decides whether ``--precision auto``
  may run the bundle in bf16), licence, description.

``python -m cmsynth_training.export restamp BUNDLE... [--models-json FILE]`` measures and records
``training_range`` in bundles exported before it existed (the demo bundles: their phantom
training cases are rendered again from the seeds and size their spec records), weights untouched.

The deployable network is ``G_A`` (A -> B: MR->CT for a cyclegan MR->CT run, CT->MR for EssNet)
or, with ``--network B``, the reverse generator; the U-Net for ``unet`` runs.
"""

import os
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from CrossModalitySynthLib.errors import ConfigError, OutputError
from CrossModalitySynthLib.io import atomic_folder
from CrossModalitySynthLib.io.writer import check_folder_replaceable
from CrossModalitySynthLib.networks import build_network, export_onnx
from CrossModalitySynthLib.registry import Direction, write_bundle_spec

from .checkpoint import load_checkpoint
from .config import config_from_dict, trained_seg_loss
from .distributed import DistInfo
from .trainer import task_class

ONNX_TOLERANCE = 1e-3


#: every file a bundle folder holds: --overwrite replaces a folder holding nothing else
BUNDLE_FILES = ("spec.json", "weights.pt", "model.onnx")

def _paper_width_note(cfg) -> str:
    m = cfg.model
    if cfg.task == "unet":
        return "U-Net channels {} (library default 16-256)".format(list(m.unet_channels))
    note = "generator ngf {} with {} residual blocks, discriminator ndf {}".format(m.ngf, m.n_blocks, m.ndf)
    if (m.ngf, m.n_blocks) != (64, 9):
        note += " (the paper's CycleGAN uses ngf 64 with 9 blocks)"
    return note


def _phantom_provenance(data: Dict[str, Any]) -> Dict[str, Any]:
    """Seeds and size of the phantom cases a run used (from their case.json), when readable."""
    import json

    if data.get("dataset") != "phantom" or not data.get("root"):
        return {}
    out: Dict[str, Any] = {}
    for key in ("mr_cases", "ct_cases"):
        seeds, sizes = [], set()
        for case in data.get(key) or []:
            try:
                with open(os.path.join(data["root"], case, "case.json"), "r", encoding="utf-8") as f:
                    meta = json.load(f)
            except (OSError, ValueError):
                return {}
            seeds.append(int(meta["seed"]))
            sizes.add(str(meta.get("size")))
        if seeds:
            out["{}_phantom_seeds".format(key[:2])] = seeds
            out["phantom_size"] = ", ".join(sorted(sizes))
    return out


def verify_onnx(net: torch.nn.Module, path: str, in_channels: int, hw: int, seed: int = 0) -> float:
    """Largest |torch - ONNX Runtime| on a random (2, C, hw, hw) input; raises when above tolerance."""
    import onnxruntime as ort

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, in_channels, hw, hw, generator=g) * 2 - 1
    with torch.no_grad():
        ref = net(x).numpy()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.max(np.abs(got - ref)))
    if got.shape != ref.shape or not diff <= ONNX_TOLERANCE:
        raise OutputError("The ONNX export differs from the torch network (max difference {:.3g}); not writing the bundle.".format(diff))
    return diff


def measure_gate(folder: str, dataset_root: str, cases: Sequence[str], threads: Optional[int] = None) -> Dict[str, Any]:
    """The bf16 quality gate of the MR->CT bundle in ``folder`` on held-out phantom ``cases``.

    The cases are loaded like the held-out evaluation loads them (the bundle's MRI inputs, the
    ``body`` mask); see :func:`CrossModalitySynthLib.inference.measure_gate.measure_bf16_gate`.
    """
    from CrossModalitySynthLib.inference.measure_gate import measure_bf16_gate
    from CrossModalitySynthLib.registry import load_bundle

    from .validation import phantom_gate_cases

    bundle = load_bundle(folder)
    names = bundle.contract.input_names
    record = measure_bf16_gate(bundle, phantom_gate_cases(dataset_root, cases, names), names=list(cases),
                               threads=threads)
    provenance = _phantom_provenance({"dataset": "phantom", "root": dataset_root, "mr_cases": list(cases)})
    seeds = provenance.get("mr_phantom_seeds")
    if seeds:
        record["phantom_seeds"] = seeds
    return record


def _training_images(spec: Dict[str, Any]):
    """Yield the input images (spec input order) of every training volume of the bundle's input
    modality, from ``training.data``: the case folders when they are there, else (phantom only) the
    cases rendered again from their recorded seeds and size (the phantom is deterministic). A
    paired EssNet's CT is the CT patients' ``ct_on_mr``, which it was trained on."""
    from CrossModalitySynthLib.phantom import make_case

    from .data import CaseRef, load_case

    training = spec.get("training") or {}
    data = training.get("data") or {}
    names = [i["name"] for i in spec["inputs"]]
    ct = spec["inputs"][0]["modality"] == "CT"
    key = "ct" if ct else "mr"
    cases = list(data.get("{}_cases".format(key)) or [])
    seeds = list(data.get("{}_phantom_seeds".format(key)) or [])
    dataset, root = data.get("dataset"), data.get("root")
    if not cases:
        raise ConfigError("The training data of {} lists no {} cases; the training range cannot be measured.".format(
            spec.get("id"), "CT" if ct else "MRI"))
    # a paired EssNet (train.lambda_paired) trained on the CT patients' CT on their MR grid
    on_mr = ct and training.get("task") == "essnet" and float(training.get("lambda_paired") or 0) > 0
    files = (["ct_on_mr.nii.gz"] if on_mr else ["ct.nii.gz"]) if ct else ["{}.nii.gz".format(n) for n in names]
    for i, case in enumerate(cases):
        folder = os.path.join(root, case) if root else ""
        on_disk = bool(root) and all(os.path.isfile(os.path.join(folder, f)) for f in files)
        if dataset == "phantom" and not on_disk:
            size = str(data.get("phantom_size", ""))
            if len(seeds) != len(cases) or size not in ("small", "chaos"):
                raise ConfigError("The phantom training case {} is not in {} and its seed and size are not recorded; "
                                  "give the training data folder.".format(case, root))
            images = make_case(seeds[i], size=size).images
            yield [images[f] for f in files]
            continue
        ref = CaseRef(dataset, root, case, ("CT_ON_MR" if on_mr else "CT") if ct else "MR", () if ct else tuple(names))
        yield load_case(ref, with_label=False)[0]


def measure_training_range(spec: Dict[str, Any]) -> Dict[str, Any]:
    """The spec's ``training_range``: every training volume of the input modality through the
    engine's ``prepare`` with the bundle's grid spec, measured by
    :func:`CrossModalitySynthLib.inference.training_range.volume_statistics`."""
    from CrossModalitySynthLib.inference.training_range import training_range, volume_statistics
    from CrossModalitySynthLib.preprocess import ModelGridSpec, prepare

    grid = ModelGridSpec.from_dict(spec["preprocessing"])
    names = [i["name"] for i in spec["inputs"]]
    sequences = [i.get("sequence", i["name"]) for i in spec["inputs"]]
    modality = spec["inputs"][0]["modality"]
    stats = [volume_statistics(prepare(images, grid, modality=modality, names=sequences), names, image=images[0])
             for images in _training_images(spec)]
    data = (spec.get("training") or {}).get("data") or {}
    dataset = str(data.get("dataset", "unknown"))
    if data.get("extra_mr_cases"):  # the U-Net's extra MRI (not measured here): not phantom-only
        dataset += " + extra MRI from {}".format(data.get("extra_mr_root"))
    return training_range(stats, names, dataset)


def restamp_training_range(folder: str, models_json: Optional[str] = None) -> Dict[str, Any]:
    """Measure and record ``training_range`` in an existing bundle's spec.json (weights untouched),
    e.g. the shipped demo bundles; with ``models_json``, update its entry there (sha256 of spec.json,
    size). Returns the record."""
    from CrossModalitySynthLib.registry import load_bundle

    bundle = load_bundle(folder)  # verified: the files are the ones the spec pins
    present = {os.path.relpath(os.path.join(r, f), folder).replace(os.sep, "/")
               for r, _, fs in os.walk(folder) for f in fs}
    extra = sorted(f for f in present if f != "spec.json" and not f.startswith(".") and f not in bundle.contract.files)
    if extra:  # write_bundle_spec would pin them too
        raise ConfigError("{} holds files its spec does not list ({}); remove them first.".format(folder, ", ".join(extra)))
    spec = bundle.contract.to_dict()
    spec["training_range"] = measure_training_range(spec)
    write_bundle_spec(folder, spec)
    if models_json:
        rel = os.path.relpath(os.path.abspath(folder), os.path.dirname(os.path.abspath(models_json))).replace(os.sep, "/")
        update_registry(models_json, [registry_entry(folder, rel)])
    return spec["training_range"]


def export_checkpoint(
    checkpoint: str,
    out: str,
    bundle_id: Optional[str] = None,
    version: Optional[str] = None,
    description: Optional[str] = None,
    network: str = "A",
    eval_root: Optional[str] = None,
    eval_cases: Optional[Sequence[str]] = None,
    overwrite: bool = False,
    onnx: bool = True,
) -> str:
    """Write the bundle folder ``out`` from ``checkpoint``; returns ``out``."""
    ckpt = load_checkpoint(checkpoint)
    cfg = config_from_dict(ckpt["config"], ckpt["task"], check_paths=False)
    if cfg.task == "augment":  # pragma: no cover - augment writes U-Net checkpoints
        raise ConfigError("Export a U-Net checkpoint of the augmentation runs, not the experiment.")
    if network not in ("A", "B"):
        raise ConfigError("--network must be A (G_A, the default) or B (the reverse generator).")
    out = os.path.abspath(out)
    if os.path.exists(out) and not overwrite:
        raise OutputError("{} already exists; choose another --out or pass --overwrite.".format(out))
    check_folder_replaceable(out, overwrite, BUNDLE_FILES, "python -m cmsynth_training export")
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        raise OutputError("Output folder {} does not exist; create it first.".format(parent))
    if eval_root is not None and not os.path.isdir(eval_root):
        raise ConfigError("--eval-root {} does not exist; give the folder of the held-out phantom cases.".format(eval_root))

    task = task_class(cfg.task)(cfg, DistInfo(device=torch.device("cpu")), None)
    for name, net in task.nets.items():
        net.load_state_dict(ckpt["nets"][name])
    target = task.export_target(network)
    net_cfg = target["config"]
    net = build_network(net_cfg, init=False)  # exactly what the engine builds from spec["network"]
    net.load_state_dict(target["net"].state_dict())
    net.eval()
    multiple = net_cfg.input_multiple

    e = cfg.export
    bundle_id = bundle_id or e.id or "{}-{}".format(cfg.task, target["direction"].replace("->", "-to-").lower())
    version = version or e.version
    spec: Dict[str, Any] = {
        "format_version": 1,
        "id": bundle_id,
        "version": str(version),
        "direction": target["direction"],
        "inputs": target["inputs"],
        "output": target["output"],
        "network": net_cfg.to_dict(),
        "preprocessing": ckpt["grid"],
        "training": {
            "task": cfg.task,
            "exported_network": "G_{}".format(network) if cfg.task != "unet" else "unet",
            "data": {**ckpt.get("data", {}), **_phantom_provenance(ckpt.get("data", {}))},
            "epochs_done": int(ckpt["epoch"]),
            "epochs_planned": int(ckpt.get("total_epochs", cfg.train.epochs + cfg.train.epochs_decay)),
            "finished": bool(ckpt.get("finished", False)),
            "steps": int(ckpt["global_step"]),
            "batch_size": cfg.train.batch_size,
            "world_size": int(ckpt.get("world_size", 1)),
            "crop_size": cfg.data.crop_size,
            "load_size": cfg.data.load_size,
            "learning_rate": cfg.train.lr,
            **({"lr_scaling": cfg.train.lr_scaling} if int(ckpt.get("world_size", 1)) > 1 else {}),
            **({"seg_loss": trained_seg_loss(ckpt), "segmenter": cfg.model.segmenter, "lambda_seg": cfg.train.lambda_seg}
               if cfg.task == "essnet" else {}),
            **({"lambda_paired": cfg.train.lambda_paired,
                "paired_note": "supervised L1 term on phantom MRI/CT pairs (not the paper's unpaired method)"}
               if cfg.task in ("cyclegan", "essnet") and cfg.train.lambda_paired > 0 else {}),
            "wall_time_s": round(float(ckpt.get("wall_time_s", 0.0)), 1),
            "device": "{} ({})".format(ckpt.get("device", "?"), ckpt.get("device_name", "?")),
            "width_note": e.width_note or _paper_width_note(cfg),
            "seed": cfg.seed,
        },
        "metrics": {"validation": ckpt.get("metrics", {}), "validation_history": ckpt.get("history", [])},
        "licence": e.licence,
        "description": description if description is not None else e.description,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }

    spec["training_range"] = measure_training_range(spec)  # compared with every input at run time

    with atomic_folder(out, overwrite, BUNDLE_FILES, "python -m cmsynth_training export", check=False) as tmp:
        torch.save(net.state_dict(), os.path.join(tmp, "weights.pt"))
        if onnx:
            onnx_path = os.path.join(tmp, "model.onnx")
            hw = 4 * multiple if multiple > 4 else 64
            export_onnx(net, onnx_path, net_cfg.in_channels, example_hw=(hw, hw))
            diff = verify_onnx(net, onnx_path, net_cfg.in_channels, hw + multiple)
            spec["onnx"] = {"file": "model.onnx", "input": "image", "output": "output",
                            "max_abs_diff_vs_torch": diff, "checked_size": hw + multiple}
        write_bundle_spec(tmp, spec)
        if eval_root is not None:
            from .validation import evaluate_bundle

            cases = list(eval_cases or [])
            if not cases:
                raise ConfigError("--eval-root needs --eval-cases (the held-out cases).")
            held = evaluate_bundle(tmp, eval_root, cases)
            held["cases"] = cases
            seeds = _phantom_provenance({"dataset": "phantom", "root": eval_root, "mr_cases": cases}).get("mr_phantom_seeds")
            if seeds:
                held["phantom_seeds"] = seeds
            held["data"] = "digital phantom ({}): full volumes run by the inference engine (prepare -> network -> restore)".format(
                os.path.basename(os.path.abspath(eval_root)))
            spec["metrics"]["held_out_phantom"] = held
            if spec["direction"] == Direction.MR_TO_CT:
                spec["metrics"]["bf16_gate"] = measure_gate(tmp, eval_root, cases)
            write_bundle_spec(tmp, spec)
    return out


def bundle_size(folder: str) -> int:
    total = 0
    for r, _, names in os.walk(folder):
        total += sum(os.path.getsize(os.path.join(r, n)) for n in names)
    return total


def registry_entry(folder: str, path_in_registry: str) -> Dict[str, Any]:
    """A ``Resources/Models.json`` entry for a bundled model folder."""
    from CrossModalitySynthLib.registry import load_bundle, sha256_of

    b = load_bundle(folder)
    return {
        "id": b.id,
        "version": b.version,
        "direction": b.direction.value,
        "inputs": b.contract.input_sequences,
        "path": path_in_registry,
        "sha256": sha256_of(os.path.join(folder, "spec.json")),
        "size": bundle_size(folder),
        "licence": b.contract.licence,
        "description": b.contract.description,
    }


def update_registry(models_json: str, entries: List[Dict[str, Any]]) -> None:
    """Replace ``entries`` (by id, in place) or append them to a Models.json file, atomically."""
    import json

    data = {"models": []}
    if os.path.isfile(models_json):
        with open(models_json, "r", encoding="utf-8") as f:
            data = json.load(f)
    new = {e["id"]: e for e in entries}
    models = [new.pop(m.get("id"), m) for m in data.get("models", [])]
    models.extend(new.values())
    data["models"] = models
    tmp = models_json + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, models_json)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m cmsynth_training.export restamp BUNDLE... [--models-json FILE]``."""
    import argparse
    import sys

    from CrossModalitySynthLib.errors import CMSynthError

    p = argparse.ArgumentParser(prog="python -m cmsynth_training.export",
                                description="Record the training range (spacing, body size, body-intensity "
                                            "histograms) in existing bundles; weights untouched.")
    p.add_argument("step", choices=["restamp"])
    p.add_argument("bundles", nargs="+", help="bundle folders")
    p.add_argument("--models-json", help="update these bundles' entries in this Models.json (sha256 of spec.json, size)")
    args = p.parse_args(argv)
    try:
        for folder in args.bundles:
            rec = restamp_training_range(folder, args.models_json)
            print("{}: {} training volumes ({}), in-plane {}-{} mm, slices {}-{} mm".format(
                folder, rec["n_volumes"], rec["dataset"], *rec["spacing_mm"]["inplane"],
                *rec["spacing_mm"]["through_plane"]))
    except CMSynthError as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
