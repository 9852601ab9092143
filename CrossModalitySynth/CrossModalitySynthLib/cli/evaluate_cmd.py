"""``cmsynth evaluate``: compare synthetic volumes with real ones; metrics, figures, HTML report."""

import os
import shlex
import sys

from ..errors import ConfigError, InputError
from ..io.guard import refuse_input_as_output
from ..progress import Progress
from .overwrite_arg import add_overwrite_argument

FEATURES = ("histspec", "randproj", "inception")
PLANES = ("axial", "coronal", "sagittal")


def register(sub, help_text: str) -> None:
    p = sub.add_parser(
        "evaluate",
        help=help_text,
        description="Compare synthetic volumes with real ones. Unpaired (default): the two sets as wholes, "
        "FID and KID over slices, HU histograms and power spectra. --paired (each synthetic volume on its "
        "real volume's grid): also MAE, PSNR, SSIM (SynthRAD2023) and MS-SSIM (SynthRAD2025) per case inside "
        "the mask (given with --masks, else the body mask of the real CT; MS-SSIM is NaN, with a warning, for a "
        "case whose mask vanishes at a coarse scale), and with --labels and "
        "--pred-labels Dice, IoU, HD95 and MSD (mm) per case. Volumes are named as lists of files (paired: "
        "matched by order), one folder each (paired: matched by file name without suffix), or a CSV in "
        "--real with the columns case_id, real, synthetic[, mask][, labels][, pred]. Writes OUT/metrics.json, "
        "OUT/per_case.csv, OUT/plots/*.png and OUT/report.html (self-contained), all or nothing. "
        "The synthetic volumes are taken as CTs (HU) unless they look like MRIs (then it is an MR-vs-MR "
        "evaluation, said in a warning); a real volume that looks like the other modality (an MRI given as "
        "the real CT) is refused unless --force.",
    )
    p.add_argument("--real", nargs="+", required=True, metavar="PATH",
                   help="real volumes: files, one folder, or a CSV case list")
    p.add_argument("--synthetic", nargs="+", metavar="PATH",
                   help="synthetic volumes: files or one folder (leave out with a CSV in --real)")
    p.add_argument("--paired", action="store_true",
                   help="case i of --synthetic lies on the grid of case i of --real: add per-case paired metrics")
    p.add_argument("--masks", nargs="+", metavar="PATH",
                   help="evaluation masks of the real volumes (files in case order, or a folder matched by name); "
                   "default: body mask of each CT (> -500 HU, largest component, holes filled)")
    p.add_argument("--labels", nargs="+", metavar="PATH", help="reference label maps (paired mode; files or folder)")
    p.add_argument("--pred-labels", nargs="+", metavar="PATH",
                   help="predicted label maps on the same grids (paired mode; files or folder)")
    p.add_argument("--features", choices=FEATURES, default="histspec",
                   help="slice features for FID/KID: histspec (default, no weights), randproj (no weights) or "
                   "inception (the standard FID; needs --fid-weights or $CMSYNTH_FID_WEIGHTS)")
    p.add_argument("--fid-weights", metavar="FILE",
                   help="the pytorch-fid InceptionV3 weights file pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="device for InceptionV3 features (default auto)")
    p.add_argument("--planes", nargs="+", choices=PLANES, default=["axial"], metavar="PLANE",
                   help="slice planes for FID/KID (default axial; all three = 2.5D, their mean is reported)")
    p.add_argument("--hu-range", nargs=2, type=float, default=[-1024.0, 3071.0], metavar=("LO", "HI"),
                   help="HU range of the histograms (default -1024 3071)")
    p.add_argument("--bin-width", type=float, default=10.0, metavar="HU", help="histogram bin width in HU (default 10)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must not exist or be empty)")
    add_overwrite_argument(p, "DIR (only once the new one is complete)")
    p.add_argument("--force", action="store_true",
                   help="evaluate even if a real volume looks like the other modality than the synthetic volumes "
                   "(e.g. an MRI given as the real CT); the finding becomes a warning")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one is drawn on stderr only when it is a terminal)")
    p.set_defaults(func=run)


def _check_fid_weights(path) -> None:
    from ..metrics.inception import FID_WEIGHTS_ENV, FID_WEIGHTS_FILENAME, FID_WEIGHTS_URL, resolve_weights_path

    try:
        resolve_weights_path(path)
    except InputError:
        raise InputError(
            "--features inception needs the weights file {} ({}), which was not found; download it from {} on a "
            "machine with internet access and pass --fid-weights FILE or set {}.".format(
                FID_WEIGHTS_FILENAME,
                "not at {}".format(path) if path else "no --fid-weights and no ${}".format(FID_WEIGHTS_ENV),
                FID_WEIGHTS_URL, FID_WEIGHTS_ENV)
        ) from None


def _settings(args):
    from ..evaluation import EvaluationSettings

    lo, hi = args.hu_range
    if not hi > lo:
        raise ConfigError("--hu-range {:g} {:g}: HI must be greater than LO.".format(lo, hi))
    if not args.bin_width > 0 or args.bin_width > hi - lo:
        raise ConfigError("--bin-width must be positive and smaller than the --hu-range width.")
    if args.fid_weights and args.features != "inception":
        raise ConfigError("--fid-weights is only used with --features inception; add it or leave out --fid-weights.")
    device = "cpu"
    if args.features == "inception":
        _check_fid_weights(args.fid_weights)  # before torch is imported: fail fast
        from ..inference.device import resolve_device

        device = resolve_device(args.device)
    planes = tuple(dict.fromkeys(args.planes))  # unique, in the order given
    return EvaluationSettings(features=args.features, fid_weights=args.fid_weights, device=device, planes=planes,
                              hu_range=(lo, hi), bin_width=args.bin_width, force=args.force)


def _input_files(inputs):
    files = [f for v in inputs.real + inputs.synthetic for f in (v.path, v.mask)]
    for p in inputs.pairs:
        files += [p.real, p.synthetic, p.mask, p.labels, p.pred]
    return files


def run(args) -> int:
    from ..evaluation import check_output_dir, collect_inputs, evaluate, make_extractor, write_outputs

    settings = _settings(args)
    given = [p for group in (args.real, args.synthetic, args.masks, args.labels, args.pred_labels) for p in group or ()]
    refuse_input_as_output(args.out, given, folder_output=True)
    check_output_dir(args.out, args.overwrite)  # fail before any computation
    inputs = collect_inputs(args.real, args.synthetic, args.paired, args.masks, args.labels, args.pred_labels)
    refuse_input_as_output(args.out, _input_files(inputs), folder_output=True)  # files a CSV names
    extractor = make_extractor(settings)
    with Progress("none" if args.no_progress else "bar", unit="volume") as bar:
        result = evaluate(inputs, settings, progress=bar, extractor=extractor)
    from_shell = bool(sys.argv) and os.path.basename(sys.argv[0]) == "cmsynth"  # not when called in-process
    command = " ".join(shlex.quote(a) for a in ["cmsynth"] + sys.argv[1:]) if from_shell else ""
    out = write_outputs(result, args.out, overwrite=args.overwrite, command=command)
    d = result.pooled["distribution"]
    if result.paired:
        p = result.pooled["paired"]
        unit = "HU" if result.modality == "CT" else "(MRI intensity units)"
        print("{} cases: MAE {:.1f} {}, PSNR {:.2f} dB, SSIM {:.4f}, MS-SSIM {:.4f} (means)".format(
            result.n["cases"], p["mae"]["mean"], unit, p["psnr"]["mean"] if p["psnr"]["mean"] is not None else float("inf"),
            p["ssim"]["mean"], p["ms_ssim"]["mean"]))
    print("FID ({}, {}) {:.4g}, KID {:.4g}; {} warning(s)".format(
        d["extractor"], "+".join(settings.planes), d["fid"], d["kid"], len(result.warnings)))
    for w in result.warnings:
        print("warning: " + w, file=sys.stderr)
    print("wrote {}/report.html, metrics.json, per_case.csv, plots/".format(out))
    return 0
