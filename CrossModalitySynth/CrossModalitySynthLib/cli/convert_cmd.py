"""``cmsynth convert``: any supported input to any supported output format."""

from ..io import SUPPORTED_WRITE, read_volume, write_volume
from ..io.guard import refuse_input_as_output
from ..io.writer import check_output_path
from ..io.dicom import plain_dicom_warnings
from .overwrite_arg import add_overwrite_argument


def register(sub, help_text: str) -> None:
    p = sub.add_parser(
        "convert",
        help=help_text,
        description="Read INPUT (file or DICOM folder) and write it to OUTPUT; the format comes from "
        f"OUTPUT's suffix ({', '.join(SUPPORTED_WRITE)}). Geometry and voxel values are kept exactly.",
    )
    p.add_argument("input", help="volume file or DICOM folder")
    p.add_argument("output", help="output file; its suffix picks the format")
    p.add_argument("--series", help="DICOM folder only: the id of the series to read as 'cmsynth info FOLDER' lists it "
                   "(a series without a SeriesInstanceUID is nouid-N), or its SeriesInstanceUID or SeriesDescription")
    add_overwrite_argument(p, "OUTPUT")
    p.set_defaults(func=run)


@plain_dicom_warnings("cmsynth convert")
def run(args) -> int:
    refuse_input_as_output(args.output, [args.input])
    check_output_path(args.output, args.overwrite)  # fail before reading a large series
    image = read_volume(args.input, series=args.series)
    write_volume(image, args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}")
    return 0
