"""``cmsynth run``: the clinical pipeline for one case or a batch of cases."""

import csv
import os
import re
import shlex
import sys
import time

from ..errors import ConfigError, InputError
from ..io.verify import disk_errors
from ..pipeline import CaseInputs, find_cases, run_batch, run_case
from ..pipeline.clinical import check_case
from ..registry import Registry
from ..io.dicom import plain_dicom_warnings
from .engine_args import add_engine_arguments, cancel_on_signals, emit_result, load, load_bundle, make_progress
from .overwrite_arg import add_overwrite_argument

#: when this module was imported (the fallback start of wall_seconds)
_IMPORTED = time.monotonic()


def register(sub, help_text: str) -> None:
    p = sub.add_parser(
        "run",
        help=help_text,
        description="Synthesise (and, with --liver-model, segment the liver) for one case given as INPUT volume(s), "
        "or for every case of --batch (a folder of case folders named <case>/<input name>.nii.gz, e.g. "
        "t1_in.nii.gz, t1_opp.nii.gz, or a CSV with columns case_id,<input names>[,reference_ct]). "
        "Each case folder gets synthetic.nii.gz, liver.nii.gz, liver.seg.nrrd, overlay_{axial,coronal,sagittal}.png "
        "(input | synthetic image, each panel titled by its modality and drawn in its own window) "
        "and summary.json (timings, the precision used and why; MAE/PSNR/SSIM when a reference CT is given). "
        "Batch runs skip cases that "
        "already have a summary.json, replace an unfinished ROOT/<case_id> folder only when it holds nothing but "
        "these outputs (else the case fails and names the other files), record a case lacking an input as failed "
        "(the input named) and write batch_summary.csv.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="input volume(s) of one case, in the model's input order: files, or DICOM folders holding one "
                   "series each (for a folder with several the error gives the 'cmsynth convert --series' command "
                   "that writes one to a file)")
    p.add_argument("--model", required=True, help="synthesis model id or bundle folder")
    p.add_argument("--liver-model", help="liver segmentation model id or bundle folder (optional)")
    p.add_argument("--out", required=True, help="output folder (one case) or root folder (batch)")
    p.add_argument("--reference-ct", help="one case: a real CT of the same patient, for MAE/PSNR/SSIM (MRI -> CT "
                   "models only); one that looks like an MRI is refused before any model is loaded, unless --force")
    p.add_argument("--batch", metavar="FOLDER_OR_CSV", help="run every case of a folder or CSV")
    p.add_argument("--reference-name", metavar="NAME",
                   help="batch folders: file stem of the reference CT in each case folder (e.g. ct_on_mr)")
    p.add_argument("--case-id", help="one case: id recorded in summary.json (default: the output folder name)")
    p.add_argument("--no-overlays", action="store_true", help="do not draw the overlay pictures")
    add_overwrite_argument(p, "OUT (one case)")
    add_engine_arguments(p)
    p.set_defaults(func=run)


@plain_dicom_warnings("cmsynth run")
def run(args) -> int:
    if bool(args.inputs) == bool(args.batch):
        raise ConfigError("Give either INPUT volume(s) of one case or --batch FOLDER_OR_CSV, not both or neither.")
    checked = case = None
    if not args.batch:
        case = CaseInputs(args.case_id or os.path.basename(os.path.abspath(args.out)), args.inputs, args.reference_ct)
        refuse_several_series(list(args.inputs) + [args.reference_ct])
    bundle = Registry(args.registry).resolve(args.model)
    if case is not None:  # every check of the case, once, before any model is loaded
        checked = check_case(case, args.out, args.overwrite, bundle.contract.output.modality, args.force)
    synth = load_bundle(args, bundle)
    seg = load(args, args.liver_model) if args.liver_model else None
    progress = make_progress(args)
    with cancel_on_signals() as token:
        try:
            if args.batch:
                cases = find_cases(args.batch, synth.input_names, args.reference_name)
                rows = run_batch(cases, synth, args.out, seg=seg, progress=progress, cancel=token,
                                 log=(lambda s: None) if args.progress == "json" else print)
                _write_batch_csv(rows, os.path.join(args.out, "batch_summary.csv"))
                failed = [r for r in rows if r["status"].startswith("failed")]
                emit_result(args, {"cases": rows})
                if args.progress != "json":
                    print(f"{len(rows) - len(failed)} of {len(rows)} cases done or skipped; "
                          f"see {os.path.join(args.out, 'batch_summary.csv')}")
                return 1 if failed else 0
            case.names = list(synth.input_names)
            summary = run_case(case, synth, args.out, seg=seg, overwrite=args.overwrite, progress=progress,
                               cancel=token, overlays=not args.no_overlays, checked=checked)
        finally:
            progress.close()
    emit_result(args, {"output": args.out, "summary": summary})
    if args.progress != "json":
        _print_summary(args.out, summary)
    return 0


def refuse_several_series(paths) -> None:
    """``run`` reads a DICOM folder INPUT only when it holds one series: for a folder with several the
    error gives the ``cmsynth convert ... --series ID`` command that writes one of them to a file."""
    from ..io.dicom import list_dicom_series

    for path in paths:
        if not path or not os.path.isdir(path):
            continue
        infos = list_dicom_series(path)
        if len(infos) < 2:
            continue
        folder = os.path.abspath(path)
        choices = ", ".join(i["id"] for i in infos[:8]) + (f" and {len(infos) - 8} more" if len(infos) > 8 else "")
        first = infos[0]["id"]
        target = os.path.join(os.path.dirname(folder), f"{os.path.basename(folder)}_{re.sub(r'[^A-Za-z0-9.-]+', '_', first)}.nii.gz")
        raise InputError(
            f"{path} holds {len(infos)} DICOM image series ({choices}) and cmsynth run reads a folder only when it "
            f"holds one: write the series you want to a file first, e.g. cmsynth convert {shlex.quote(path)} "
            f"{shlex.quote(target)} --series {shlex.quote(first)}, and give that file as INPUT."
        )


def _print_summary(out, s) -> None:
    print(f"case {s['case_id']}: outputs in {os.path.abspath(out)}")
    for key, name in s["outputs"].items():
        print(f"  {key:<20} {os.path.join(os.path.abspath(out), name)}")
    if "liver_volume_ml" in s:
        print(f"  liver volume         {s['liver_volume_ml']} ml")
    if "metrics" in s:
        m = s["metrics"]
        print(f"  vs reference CT      MAE {m['mae_hu']} HU, PSNR {m['psnr_db']} dB, SSIM {m['ssim']} (inside the body)")
    print(f"  time                 {wall_seconds():.1f} s wall, the whole command ({stage_text(s)}) on {s['device']}")
    if "precision" in s:
        print(f"  precision            {s['precision']} ({s['precision_reason']})")
    for w in s["warnings"]:
        print(f"cmsynth run: warning: {w}", file=sys.stderr)


def wall_seconds() -> float:
    """Seconds since the process started (Python start-up, imports, model loading, every stage,
    writing): from /proc on Linux, else since this module was imported (when the command line
    was built, before the library's heavy imports)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = float(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _IMPORTED


def stage_text(s) -> str:
    """The stages of a case summary's timings, e.g. ``read 0.2, synthesis 3.1, ... s``."""
    t = s["timings_s"]
    parts = [("read", t.get("read"))]
    parts.append(("synthesis", sum(v for k, v in t.items() if k.startswith("synthesis_"))))
    if any(k.startswith("liver_") for k in t):
        parts.append(("liver", sum(v for k, v in t.items() if k.startswith("liver_"))))
    parts += [(k, t.get(k)) for k in ("metrics", "write", "overlays")]
    return ", ".join(f"{name} {value:.1f}" for name, value in parts if value is not None) + " s"


def _write_batch_csv(rows, path) -> None:
    cols = ["case_id", "status", "output", "seconds", "mae_hu", "liver_volume_ml"]
    tmp = path + ".tmp"
    try:
        with disk_errors(path), open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow(r)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
