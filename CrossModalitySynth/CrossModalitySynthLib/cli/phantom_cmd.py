"""``cmsynth phantom``: write digital abdominal phantom cases (paired CT + MRI + labels)."""

import sys

from ..errors import OutputError
from .overwrite_arg import add_overwrite_argument


def register(sub, help_text: str) -> None:
    p = sub.add_parser(
        "phantom",
        help=help_text,
        description="Write DIR/case_XXX/ folders, each one synthetic patient imaged as CT (HU) and as MRI "
        "(T1 in-phase, T1 opposed-phase, T2) with organ labels and a body mask. Deterministic for a seed.",
    )
    p.add_argument("--out", required=True, help="output folder (created with its parents); cases go to OUT/case_XXX")
    p.add_argument("--cases", type=int, default=1, help="number of cases (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed; case i uses seed + i (default 0)")
    p.add_argument(
        "--size",
        choices=["small", "chaos"],
        default="small",
        help="small: fast test grids; chaos: CHAOS-like grids (MR ~256x256 x 6-8 mm, CT 512x512 x ~3 mm)",
    )
    p.add_argument("--oblique", action="store_true", help="write the volumes with a non-identity (oblique) direction")
    p.add_argument("--no-lesions", action="store_true", help="never add liver lesions")
    add_overwrite_argument(p, "each OUT/case_XXX folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..phantom import write_cases

    if args.cases < 1:
        raise OutputError("--cases must be at least 1.")
    if args.seed < 0:
        raise OutputError("--seed must be a non-negative integer.")
    # OUT and missing parent folders are created (the demo writes demo_output/phantom)

    finished = []

    def report(done: int, total: int, path: str) -> None:
        finished.append(path)
        print(path, flush=True)  # one line per finished case: progress for callers that parse it

    try:
        write_cases(
            args.out,
            n_cases=args.cases,
            seed=args.seed,
            size=args.size,
            oblique=args.oblique,
            lesions=not args.no_lesions,
            overwrite=args.overwrite,
            progress=report,
        )
    except KeyboardInterrupt:
        kept = f"the {len(finished)} finished case folder(s) above are complete and kept" if finished else \
            "no case was written"
        print(f"cmsynth phantom: interrupted; {kept}, nothing partial was left behind.", file=sys.stderr)
        return 130
    return 0
