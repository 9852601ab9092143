"""``cmsynth synthesize``: MRI channels -> synthetic CT, or CT -> synthetic MRI."""

from ..inference import synthesize
from ..io import SUPPORTED_WRITE, write_volume
from ..io.writer import check_output_suffix
from ..io.dicom import plain_dicom_warnings
from .engine_args import add_engine_arguments, add_series_argument, run_engine_command
from .overwrite_arg import add_overwrite_argument


def register(sub, help_text: str) -> None:
    p = sub.add_parser(
        "synthesize",
        help=help_text,
        description="Run a synthesis model on INPUT volume(s) and write the result on exactly the grid of the "
        "first input. The model's direction decides what is made: an MR->CT model takes the MRI sequences it "
        "lists (in that order; see 'cmsynth models list'), a CT->MR model takes one CT. Inputs may be any "
        "supported file or a DICOM folder. The output is Float32 (HU for CT).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="input volume(s) in the model's input order")
    p.add_argument("--model", required=True, help="model id (see 'cmsynth models list') or a bundle folder")
    p.add_argument("--out", required=True, help="output file (.nii.gz, .nii, .nrrd, .nhdr, .mha, .mhd; not .seg.nrrd, which is for segmentations); checked before the model runs")
    add_series_argument(p)
    add_overwrite_argument(p, "OUT")
    add_engine_arguments(p)
    p.set_defaults(func=run)


@plain_dicom_warnings("cmsynth synthesize")
def run(args) -> int:
    image_suffixes = tuple(s for s in SUPPORTED_WRITE if s != ".seg.nrrd")
    check_output_suffix(args.out, image_suffixes, "synthetic image (a .seg.nrrd name is for segmentations)")
    return run_engine_command(args, synthesize, lambda image, out, overwrite: write_volume(image, out, overwrite=overwrite))
