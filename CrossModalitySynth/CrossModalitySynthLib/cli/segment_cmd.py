"""``cmsynth segment``: MRI -> liver label volume or 3D Slicer segmentation."""

from ..errors import OutputError
from ..inference import segment
from ..io import write_volume
from ..io.writer import check_output_suffix
from ..io.segnrrd import write_seg_nrrd
from ..io.dicom import plain_dicom_warnings
from .engine_args import add_engine_arguments, add_series_argument, run_engine_command
from .overwrite_arg import add_overwrite_argument


def register(sub, help_text: str) -> None:
    p = sub.add_parser(
        "segment",
        help=help_text,
        description="Run a liver segmentation model on INPUT volume(s) (the sequences the model lists, in order) "
        "and write the liver label (0 background, 1 liver) on exactly the first input's grid: a label volume "
        "(.nii.gz, .nrrd ...) or, with a .seg.nrrd name, a 3D Slicer segmentation with a named, coloured segment.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="input MRI volume(s) in the model's input order")
    p.add_argument("--model", required=True, help="liver model id (see 'cmsynth models list') or a bundle folder")
    p.add_argument("--out", required=True, help="output file: .nii.gz / .nrrd label volume or .seg.nrrd segmentation")
    add_series_argument(p)
    add_overwrite_argument(p, "OUT")
    add_engine_arguments(p)
    p.set_defaults(func=run)


@plain_dicom_warnings("cmsynth segment")
def run(args) -> int:
    if args.out.lower().endswith((".png", ".jpg")):
        raise OutputError("Segmentations are written as volumes (.nii.gz, .nrrd, .seg.nrrd), not pictures.")
    check_output_suffix(args.out, what="liver segmentation")
    return run_engine_command(args, segment, _write)


def _write(image, out, overwrite) -> None:
    if out.lower().endswith(".seg.nrrd"):
        write_seg_nrrd(image, out, overwrite=overwrite)
    else:
        write_volume(image, out, overwrite=overwrite)
