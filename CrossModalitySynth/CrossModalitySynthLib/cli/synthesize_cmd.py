"""``cmsynth synthesize``: MRI channels -> synthetic CT, or CT -> synthetic MRI."""

from ..inference import synthesize
from ..io import read_volume, write_volume
from ..io.writer import check_output_path
from .engine_args import add_engine_arguments, cancel_on_signals, emit_result, load, make_progress


def register(sub) -> None:
    p = sub.add_parser(
        "synthesize",
        help="synthetic CT from MRI (or synthetic MRI from CT), on the input's exact grid",
        description="Run a synthesis model on INPUT volume(s) and write the result on exactly the grid of the "
        "first input. The model's direction decides what is made: an MR->CT model takes the MRI sequences it "
        "lists (in that order; see 'cmsynth models list'), a CT->MR model takes one CT. Inputs may be any "
        "supported file or a DICOM folder. The output is Float32 (HU for CT).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="input volume(s) in the model's input order")
    p.add_argument("--model", required=True, help="model id (see 'cmsynth models list') or a bundle folder")
    p.add_argument("--out", required=True, help="output file (.nii.gz, .nrrd, .mha ...)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    add_engine_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    check_output_path(args.out, args.overwrite)
    model = load(args, args.model)
    images = [read_volume(p) for p in args.inputs]
    progress = make_progress(args)
    with cancel_on_signals() as token:
        try:
            res = synthesize(model, images, progress=progress, cancel=token)
        finally:
            progress.close()
        token.check()
        write_volume(res.image, args.out, overwrite=args.overwrite)
    for w in res.warnings:
        print(f"warning: {w}")
    emit_result(args, {"output": args.out, "timings_s": res.timings_s, "warnings": res.warnings})
    if args.progress != "json":
        print(f"wrote {args.out} ({res.slices} slices, batch {res.batch_size}, {res.device}, "
              f"{sum(res.timings_s.values()):.1f} s)")
    return 0
