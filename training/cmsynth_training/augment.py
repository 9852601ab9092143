"""The liver paper's experiment: does synthetic MRI (made from labelled CT) help a liver U-Net?

Steps (``python -m cmsynth_training augment --config FILE --out DIR``):

0. Checks, before anything is written: no test patient (``augment.test_cases``) was a training
   patient of the translator (its checkpoint ``data`` / bundle ``training.data`` record) or of
   either U-Net arm (``data.mr_cases`` / ``data.cases``; ``augment.ct_cases``, whose CT labels
   train the ``real+synthetic`` arm). Patients are compared by identity, not folder name:
   phantom ``seed:<n>`` (the seed in case.json, which one patient's CT and MRI share), CHAOS
   ``CT:<id>`` / ``MR:<id>`` (CHAOS CT and MR patients with the same number are different people).
   ``train.steps_per_epoch`` must be set so that both arms train for the same number of steps.

1. Synthetic MRI: every CT case of ``augment.ct_cases`` goes through the translator (a CT->MR
   bundle, or an ``essnet`` / ``cyclegan`` checkpoint) on the inference path (prepare ->
   generator -> restore onto the CT grid); the CT's liver label comes along. Written to
   ``DIR/synthetic/<case>/<seq>.nii.gz`` + ``labels.nii.gz`` (the phantom layout).
2. For each seed of ``augment.seeds``, two U-Nets with identical settings and the same number of
   steps: ``real`` (the real MRI training cases) and ``real+synthetic`` (the same plus the
   synthetic MRI). Runs live in ``DIR/runs/<arm>_seed<k>/``; a finished run is not repeated and
   an unfinished one is resumed, so the experiment can be restarted.
3. Each U-Net segments every held-out real MRI (``augment.test_cases``) on the full volume
   (prepare -> U-Net -> restore): Dice, IoU and HD95 in mm per patient (``scores.csv``).
4. Per patient, the scores are averaged over the seeds; the mean difference
   (real+synthetic - real) gets a paired bootstrap 95 % CI over patients and a Wilcoxon
   signed-rank test, exact up to 50 patients whatever the scipy release, its method recorded
   (``summary.csv``, ``report.md``, ``report.png``).
"""

import copy
import csv
import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch

from CrossModalitySynthLib.errors import ConfigError
from CrossModalitySynthLib.io import write_volume
from CrossModalitySynthLib.metrics import compare_paired
from CrossModalitySynthLib.preprocess import ModelGridSpec, prepare

from .checkpoint import load_checkpoint
from .config import Config, MR_SEQUENCES, config_from_dict
from .data import CaseRef, case_identities, list_cases, load_case, recorded_patients, training_cases
from .distributed import DistInfo, barrier, init_distributed
from .validation import liver_case, load_bundle_network, translate
from .logs import RunLogger

ARMS = ("real", "real+synthetic")
METRICS = (("liver_dice", "Dice", "higher"), ("liver_iou", "IoU", "higher"), ("liver_hd95_mm", "HD95 (mm)", "lower"))


def _slug(arm: str) -> str:
    return arm.replace("+", "_plus_")


# ------------------------------------------------------------------------------ translator


def load_translator(path: str, device: torch.device) -> Tuple[torch.nn.Module, ModelGridSpec, List[str], str]:
    """``(network CT -> MRI, its grid spec, MRI sequences it writes, description)``."""
    if os.path.isdir(path):
        bundle, net, spec = load_bundle_network(path, device)
        if bundle.direction != "CT->MR":
            raise ConfigError("augment.translator {} is a {} bundle; it must turn CT into MRI (CT->MR).".format(path, bundle.direction))
        seqs = list(bundle.spec["output"].get("sequences") or [])
        if not seqs:
            seqs = ["t1_in"][: bundle.spec["network"].get("out_channels", 1)]
        return net, spec, seqs, "bundle {} {}".format(bundle.id, bundle.version)
    from .trainer import task_class

    ckpt = load_checkpoint(path)
    if ckpt["task"] not in ("essnet", "cyclegan"):
        raise ConfigError("augment.translator {} is a '{}' checkpoint; give an essnet or cyclegan one.".format(path, ckpt["task"]))
    cfg = config_from_dict(ckpt["config"], ckpt["task"], check_paths=False)
    task = task_class(cfg.task)(cfg, DistInfo(device=device), None)
    for name, net in task.nets.items():
        net.load_state_dict(ckpt["nets"][name])
    for which in ("A", "B"):
        target = task.export_target(which)
        if target["direction"] == "CT->MR":
            net = target["net"].eval()
            return net, ModelGridSpec.from_dict(ckpt["grid"]), list(cfg.data.mr_sequences), "{} checkpoint {}".format(cfg.task, path)
    raise ConfigError("augment.translator {} has no CT->MR generator.".format(path))  # pragma: no cover


def translator_record(path: str) -> Tuple[Dict[str, Any], str]:
    """``(training data record, description)`` of a translator bundle or checkpoint, without its weights.

    A bundle's record is ``spec["training"]["data"]``, a checkpoint's its ``data``; both list the
    MRI and CT training cases (and, for phantom data, their seeds)."""
    if os.path.isdir(path):
        from CrossModalitySynthLib.registry import load_bundle

        spec = load_bundle(path).spec
        return dict((spec.get("training") or {}).get("data") or {}), "the translator bundle {}".format(path)
    ckpt = load_checkpoint(path)
    return dict(ckpt.get("data") or {}), "the translator checkpoint {}".format(path)


def check_leakage(cfg: Config, translator: Dict[str, Any], translator_what: str, mr_cases: Sequence[str],
                  ct_cases: Sequence[str], test_cases: Sequence[str]) -> Dict[str, int]:
    """Refuse (:class:`ConfigError`, one sentence naming the patients) when a test patient was
    seen in training by the translator (``translator``: its data record) or by either U-Net arm
    (``mr_cases``: real MRI; ``ct_cases``: the CT whose labels come with the synthetic MRI).

    Returns the number of distinct training patients checked per source (for the report)."""
    d = cfg.data
    test = case_identities(d.dataset, d.root, test_cases, "MR", what="augment.test_cases")
    seen: Dict[str, List[str]] = {}
    counts: Dict[str, int] = {}
    trans = recorded_patients(translator, translator_what)
    sources = [
        ("the translator's MRI training cases", trans["MR"]),
        ("the translator's CT training cases", trans["CT"]),
        ("the U-Net arms' real MRI (data.mr_cases / data.cases)",
         list(case_identities(d.dataset, d.root, mr_cases, "MR", what="the real MRI training cases").values())),
        ("the synthetic MRI's CT cases (augment.ct_cases)",
         list(case_identities(d.dataset, d.root, ct_cases, "CT", what="augment.ct_cases").values())),
    ]
    for label, ids in sources:
        counts[label] = len(set(ids))
        for pid in ids:
            seen.setdefault(pid, [])
            if label not in seen[pid]:
                seen[pid].append(label)
    leaks = [(case, pid) for case, pid in test.items() if pid in seen]
    if leaks:
        where: List[str] = []
        for _, pid in leaks:
            where += [w for w in seen[pid] if w not in where]
        raise ConfigError(
            "Test patient(s) {} were seen in training by {}; hold them out of that training or choose other "
            "augment.test_cases.".format(
                ", ".join(case if case == pid else "{} ({})".format(case, pid) for case, pid in leaks), " and ".join(where)
            )
        )
    return counts


def synthesize(cfg: Config, translator: str, ct_cases: Sequence[str], out_dir: str, device: torch.device,
               log: RunLogger) -> Tuple[List[str], str]:
    """Write synthetic MRI (+ the CT's liver labels) for ``ct_cases``; returns (case names, translator text)."""
    net, spec, seqs, what = load_translator(translator, device)
    missing = [s for s in cfg.data.mr_sequences if s not in seqs]
    if missing:
        raise ConfigError(
            "The translator writes {} but the U-Net needs {}; use a translator trained on these sequences.".format(
                ", ".join(seqs), ", ".join(missing)
            )
        )
    os.makedirs(out_dir, exist_ok=True)
    names = []
    for case in ct_cases:
        folder = os.path.join(out_dir, case)
        targets = [os.path.join(folder, "{}.nii.gz".format(s)) for s in seqs] + [os.path.join(folder, "labels.nii.gz")]
        names.append(case)
        if all(os.path.isfile(p) for p in targets):
            continue
        images, _, label = load_case(CaseRef(cfg.data.dataset, cfg.data.root, case, "CT"), with_label=True)
        prepared = prepare(images, spec, modality="CT")
        outputs, _ = translate(net, prepared, "MR", device, batch_size=8)
        os.makedirs(folder, exist_ok=True)
        for s, img in zip(seqs, outputs):
            write_volume(img, os.path.join(folder, "{}.nii.gz".format(s)), overwrite=True)
        write_volume(label, os.path.join(folder, "labels.nii.gz"), overwrite=True)
        log.info("synthetic MRI of CT case {} written to {}".format(case, folder))
    return names, what


# ------------------------------------------------------------------------------ experiment


def _cases(cfg: Config) -> Tuple[List[str], List[str], List[str]]:
    a, d = cfg.augment, cfg.data
    test = list(a.test_cases) if a.test_cases is not None else list(cfg.val.cases or [])
    if len(test) < 2:
        raise ConfigError("augment.test_cases needs at least 2 held-out real MRI cases for a paired comparison.")
    ct = list(a.ct_cases) if a.ct_cases is not None else (list_cases("chaos", d.root, "CT") if d.dataset == "chaos" else [])
    if not ct:
        raise ConfigError("augment.ct_cases is empty; list the labelled CT cases that become synthetic MRI.")
    mr, _ = training_cases(cfg)
    if d.dataset == "phantom":  # on CHAOS, CT and MR patients are different people
        mr_ids = set(case_identities(d.dataset, d.root, mr, "MR", what="the real MRI training cases").values())
        ct_ids = case_identities(d.dataset, d.root, ct, "CT", what="augment.ct_cases")
        clash = [c for c in ct if ct_ids[c] in mr_ids]
        if clash:
            raise ConfigError(
                "CT case(s) {} are also real MRI training patients; use other patients for the synthetic MRI.".format(", ".join(clash))
            )
    return mr, ct, test


def _arm_config(cfg: Config, arm: str, seed: int, synth_dir: str, synth_cases: List[str], mr_cases: List[str],
                cache_dir: str) -> Config:
    sub = copy.deepcopy(cfg)
    sub.task = "unet"
    sub.seed = int(seed)
    sub.data.cases = None
    sub.data.mr_cases = list(mr_cases)
    sub.data.cache_dir = cache_dir
    sub.val.root = None  # no model selection: the final U-Net of each run is evaluated on the test cases
    if arm == "real":
        sub.data.extra_mr_root, sub.data.extra_mr_cases = None, None
    else:
        sub.data.extra_mr_root, sub.data.extra_mr_cases = synth_dir, list(synth_cases)
    return sub


def _write_csv(path: str, rows: List[Dict[str, Any]]) -> None:
    if not rows:
        return
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: ("{:.6g}".format(v) if isinstance(v, float) else v) for k, v in r.items()})


def run_augment(cfg: Config, out: str) -> str:
    """Run the whole experiment into ``out``; returns the path of ``report.md``."""
    from .trainer import train

    # every check before anything is written
    mr_cases, ct_cases, test_cases = _cases(cfg)
    record, record_what = translator_record(cfg.augment.translator)
    checked = check_leakage(cfg, record, record_what, mr_cases, ct_cases, test_cases)
    dist = init_distributed(cfg.train.device)
    os.makedirs(out, exist_ok=True)
    log = RunLogger(out, enabled=dist.is_main, tensorboard=False)
    log.info("leakage check passed: no test patient among {}".format(
        "; ".join("{} ({} patients)".format(k, v) for k, v in checked.items())))
    cache_dir = cfg.data.cache_dir or os.path.join(out, "cache")
    synth_dir = os.path.join(out, "synthetic")
    translator_text = ""
    if dist.is_main:
        _, translator_text = synthesize(cfg, cfg.augment.translator, ct_cases, synth_dir, dist.device, log)
    barrier(dist)
    synth_cases = list(ct_cases)
    log.info("augment: {} real MRI training cases, {} synthetic MRI cases, {} test cases, seeds {}".format(
        len(mr_cases), len(synth_cases), len(test_cases), list(cfg.augment.seeds)))

    rows: List[Dict[str, Any]] = []
    runs: Dict[str, Dict[str, Any]] = {}
    for seed in cfg.augment.seeds:
        for arm in ARMS:
            sub = _arm_config(cfg, arm, seed, synth_dir, synth_cases, mr_cases, cache_dir)
            run_dir = os.path.join(out, "runs", "{}_seed{}".format(_slug(arm), seed))
            last = os.path.join(run_dir, "checkpoints", "last.pt")
            resume = last if os.path.isfile(last) else None  # a finished run is only re-evaluated
            log.info("training U-Net: {} seed {} -> {}".format(arm, seed, run_dir))
            result = train(sub, run_dir, resume=resume, echo=False)
            runs["{}_seed{}".format(_slug(arm), seed)] = {"steps": result.global_step, "wall_time_s": result.wall_time_s}
            if dist.is_main:
                from .unet import UNetTask

                task = UNetTask(sub, DistInfo(device=dist.device), None)
                task.net.load_state_dict(load_checkpoint(last)["nets"]["unet"])
                task.net.eval()
                for case in test_cases:
                    ref = CaseRef(cfg.data.dataset, cfg.data.root, case, "MR", tuple(cfg.data.mr_sequences))
                    with torch.no_grad():
                        s = liver_case(task.net, ref, task.spec, dist.device, cfg.val.batch_size)
                    rows.append({"arm": arm, "seed": int(seed), "case": case, **s})
            barrier(dist)
    if not dist.is_main:
        return os.path.join(out, "report.md")
    steps = {k: v["steps"] for k, v in runs.items()}
    if len(set(steps.values())) > 1:
        raise ConfigError(
            "The U-Net runs in {} ended after different numbers of steps ({}), so the arms are not comparable; "
            "remove that folder and run again.".format(
                os.path.join(out, "runs"), ", ".join("{} {}".format(k, v) for k, v in sorted(steps.items())))
        )
    _write_csv(os.path.join(out, "scores.csv"), rows)
    return write_report(out, rows, cfg, translator_text, mr_cases, synth_cases, test_cases, runs)


# ---------------------------------------------------------------------------------- report


def per_patient(rows: List[Dict[str, Any]], arm: str, metric: str, cases: Sequence[str]) -> np.ndarray:
    """Mean over seeds of ``metric`` for each case (the unit of the paired statistics is the patient)."""
    return np.array([np.mean([r[metric] for r in rows if r["arm"] == arm and r["case"] == c]) for c in cases], dtype=np.float64)


def write_report(out: str, rows: List[Dict[str, Any]], cfg: Config, translator: str, mr_cases, synth_cases, test_cases,
                 runs: Dict[str, Dict[str, Any]]) -> str:
    cases = list(test_cases)
    steps_done = sorted({int(v["steps"]) for v in runs.values()})[0] if runs else 0
    summary = []
    patients = []
    for c_i, c in enumerate(cases):
        row = {"case": c}
        for key, _, _ in METRICS:
            for arm in ARMS:
                row["{}_{}".format(_slug(arm), key)] = float(per_patient(rows, arm, key, [c])[0])
        patients.append(row)
    _write_csv(os.path.join(out, "patients.csv"), patients)
    diffs = {}
    for key, label, better in METRICS:
        real = per_patient(rows, "real", key, cases)
        mixed = per_patient(rows, "real+synthetic", key, cases)
        cmp = compare_paired(mixed, real, n_boot=cfg.augment.n_boot, seed=cfg.seed)
        b, w = cmp.bootstrap, cmp.wilcoxon
        diffs[key] = (mixed - real, b)
        summary.append({
            "metric": label,
            "better": better,
            "n_patients": b.n_patients,
            "real_mean": float(real.mean()),
            "real_plus_synthetic_mean": float(mixed.mean()),
            "mean_difference": b.mean_difference,
            "ci_low": b.low,
            "ci_high": b.high,
            "confidence": b.confidence,
            "wilcoxon_statistic": w.statistic,
            "wilcoxon_p": w.p_value,
            "wilcoxon_method": w.method,
            "n_boot": b.n_boot,
            "steps_per_epoch": cfg.train.steps_per_epoch,
            "steps_per_unet": steps_done,
        })
    _write_csv(os.path.join(out, "summary.csv"), summary)
    plot = _plot(os.path.join(out, "report.png"), diffs)

    t = cfg.train
    planned = t.steps_per_epoch * (t.epochs + t.epochs_decay)
    if t.max_steps is not None:
        planned = min(planned, t.max_steps)
    lines = [
        "# Liver U-Net: real MRI vs real + synthetic MRI",
        "",
        "- Translator (CT -> MRI): {}".format(translator or cfg.augment.translator),
        "- Real MRI training cases ({}): {}".format(len(mr_cases), ", ".join(mr_cases)),
        "- Synthetic MRI from labelled CT cases ({}): {}".format(len(synth_cases), ", ".join(synth_cases)),
        "- Held-out real MRI test cases ({}): {}".format(len(cases), ", ".join(cases)),
        "- MRI channels: {}; seeds: {}".format(
            ", ".join(MR_SEQUENCES[s][0] for s in cfg.data.mr_sequences), list(cfg.augment.seeds)),
        "- Steps per U-Net, equal for both arms: {} (train.steps_per_epoch {} x {} epochs{}; planned {})".format(
            steps_done, t.steps_per_epoch, t.epochs + t.epochs_decay,
            ", train.max_steps {}".format(t.max_steps) if t.max_steps is not None else "", planned),
        "- No test patient is a training patient of the translator or of either U-Net arm (checked by patient "
        "identity: phantom seed, CHAOS CT:<id> / MR:<id>).",
        "- Scores per patient on the full volume (prepare -> U-Net -> restore onto the MRI grid), averaged over seeds;",
        "  difference = (real + synthetic) - real; paired bootstrap over patients ({} resamples) and Wilcoxon signed-rank test".format(cfg.augment.n_boot),
        "  (exact p over all 2^n sign patterns, ties included, up to 50 patients; normal approximation above; the same on every scipy).",
        "",
        "| metric | real | real + synthetic | mean difference | 95% CI | Wilcoxon p (method) | patients |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append("| {} | {:.4f} | {:.4f} | {:+.4f} | [{:+.4f}, {:+.4f}] | {:.3g} ({}) | {} |".format(
            s["metric"], s["real_mean"], s["real_plus_synthetic_mean"], s["mean_difference"], s["ci_low"], s["ci_high"],
            s["wilcoxon_p"], s["wilcoxon_method"] or "all differences 0", s["n_patients"]))
    lines += [
        "",
        "For reference, the liver paper reports IoU 0.8974 -> 0.9091 (+1.17 points) and Dice 0.9459 -> 0.9524 with "
        "EssNet-synthetic MRI (a secondary source; approximate).",
        "",
        "Files: scores.csv (arm, seed, case), patients.csv (seed means), summary.csv, {}.".format(os.path.basename(plot)),
        "",
    ]
    path = os.path.join(out, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def _plot(path: str, diffs: Dict[str, Tuple[np.ndarray, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.4 * len(METRICS), 3.2))
    for ax, (key, label, better) in zip(np.atleast_1d(axes), METRICS):
        d, b = diffs[key]
        jitter = np.linspace(-0.12, 0.12, num=len(d)) if len(d) > 1 else np.zeros(1)
        ax.scatter(jitter, d, s=14, color="0.45", label="patients")
        ax.errorbar([0.35], [b.mean_difference], yerr=[[b.mean_difference - b.low], [b.high - b.mean_difference]],
                    fmt="o", color="C3", capsize=4, label="mean, 95% CI")
        ax.axhline(0.0, color="0.2", lw=0.8, ls="--")
        ax.set_xlim(-0.4, 0.6)
        ax.set_xticks([])
        ax.set_title("{} ({} is better)".format(label, better), fontsize=9)
        ax.set_ylabel("real+synthetic - real")
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
