"""``cmsynth info``: what a volume (or a DICOM folder) holds."""

import json
import os
import shlex

from ..io import describe_volume, read_volume
from ..io.dicom import plain_dicom_warnings


def register(sub, help_text: str) -> None:
    p = sub.add_parser(
        "info",
        help=help_text,
        description="Print a volume's geometry and values. For a DICOM folder, also list the series it holds, "
        "each with the id --series accepts (a series without a SeriesInstanceUID gets the id nouid-N); a folder "
        "with several series and no --series gets only the list.",
    )
    p.add_argument("input", help="volume file (.nii/.nii.gz/.nrrd/.nhdr/.mha/.mhd/.dcm) or DICOM folder")
    p.add_argument("--series", help="DICOM folder only: the id (as listed), SeriesInstanceUID or SeriesDescription "
                   "of the series to describe")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


@plain_dicom_warnings("cmsynth info")
def run(args) -> int:
    info = {"path": os.path.abspath(args.input)}
    if os.path.isdir(args.input):
        from ..io.dicom import list_dicom_series

        info["series"] = list_dicom_series(args.input)
    only_list = "series" in info and len(info["series"]) > 1 and args.series is None
    if not only_list:
        image = read_volume(args.input, series=args.series)
        info.update(describe_volume(image))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    fmt = lambda v: " ".join(f"{x:.6g}" for x in v)  # noqa: E731
    print(f"path:        {info['path']}")
    if "series" in info:
        print(f"series:      {len(info['series'])}")
        for s in info["series"]:
            desc = s.get("description") or ""
            print(f"  - {s['id']}  {desc}  ({s.get('n_files', '?')} files; use --series {shlex.quote(s['id'])})")
    if only_list:
        print("pick one with --series ID to see its size, spacing, origin, direction and values")
        return 0
    print(f"dimension:   {info['dimension']}")
    print(f"size:        {' x '.join(str(s) for s in info['size'])}")
    print(f"spacing:     {fmt(info['spacing'])} mm")
    print(f"origin:      {fmt(info['origin'])} mm (LPS)")
    print(f"direction:   {fmt(info['direction'])}")
    print(f"pixel type:  {info['pixel_type']} ({info['components']} component(s))")
    print(f"value range: {info['min']} .. {info['max']}")
    if info["non_finite_voxels"]:
        print(f"WARNING:     {info['non_finite_voxels']} NaN/Inf voxels")
    return 0
