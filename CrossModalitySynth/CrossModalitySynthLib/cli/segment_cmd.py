"""``cmsynth segment``: MRI -> liver label volume or 3D Slicer segmentation."""

from ..errors import OutputError
from ..inference import segment
from ..io import read_volume, write_volume
from ..io.segnrrd import write_seg_nrrd
from ..io.writer import check_output_path
from .engine_args import add_engine_arguments, cancel_on_signals, emit_result, load, make_progress


def register(sub) -> None:
    p = sub.add_parser(
        "segment",
        help="liver segmentation of MRI, as a label volume or a Slicer .seg.nrrd",
        description="Run a liver segmentation model on INPUT volume(s) (the sequences the model lists, in order) "
        "and write the liver label (0 background, 1 liver) on exactly the first input's grid: a label volume "
        "(.nii.gz, .nrrd ...) or, with a .seg.nrrd name, a 3D Slicer segmentation with a named, coloured segment.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="input MRI volume(s) in the model's input order")
    p.add_argument("--model", required=True, help="liver model id (see 'cmsynth models list') or a bundle folder")
    p.add_argument("--out", required=True, help="output file: .nii.gz / .nrrd label volume or .seg.nrrd segmentation")
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
            res = segment(model, images, progress=progress, cancel=token)
        finally:
            progress.close()
        token.check()
        if args.out.lower().endswith(".seg.nrrd"):
            write_seg_nrrd(res.image, args.out, overwrite=args.overwrite)
        elif args.out.lower().endswith((".png", ".jpg")):
            raise OutputError("Segmentations are written as volumes (.nii.gz, .nrrd, .seg.nrrd), not pictures.")
        else:
            write_volume(res.image, args.out, overwrite=args.overwrite)
    for w in res.warnings:
        print(f"warning: {w}")
    emit_result(args, {"output": args.out, "timings_s": res.timings_s, "warnings": res.warnings})
    if args.progress != "json":
        print(f"wrote {args.out} ({res.slices} slices, {res.device}, {sum(res.timings_s.values()):.1f} s)")
    return 0
