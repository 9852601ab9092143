"""``cmsynth view``: review a ``cmsynth run`` output in a web browser (:mod:`..web.review_page`)."""

from ..errors import InputError


def register(sub, help_text: str) -> None:
    from ..web.review_page import build_parser

    p = sub.add_parser(
        "view",
        help=help_text,
        description="Serve a review page of a 'cmsynth run' output folder (or of explicit --mri/--synthetic/--labels "
        "files): the input and the synthetic image side by side in linked Slicer slice views, the liver outline on "
        "both, the liver surface in 3D, a slice slider and CT window presets (abdomen W400/L40, liver W150/L30, bone "
        "W1800/L400). Works for CT -> synthetic MRI runs too. Open the printed address in a web browser. Binds to "
        "127.0.0.1 unless --host says otherwise. Needs the 'web' extra.",
    )
    build_parser(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..web.review_page import serve

    if not 0 < args.port < 65536:
        raise InputError(f"--port must be from 1 to 65535, not {args.port}.")
    return serve(args)
