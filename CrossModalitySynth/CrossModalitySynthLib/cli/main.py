"""``cmsynth``: the command line of CrossModalitySynth.

Each subcommand lives in its own module exposing ``register(subparsers)``; ``register`` adds a
parser whose ``func`` default is called with the parsed arguments and returns an exit code.
User errors (:class:`~CrossModalitySynthLib.errors.CMSynthError`) are printed as one line, with
no traceback, and give a non-zero exit code.
"""

import argparse
import importlib
import os
import sys
from typing import List, Optional

from .. import __version__
from ..errors import CMSynthError

#: (command, module under CrossModalitySynthLib.cli, one-line help), in the order --help shows them.
#: Only the chosen command's module is imported, so ``cmsynth --help`` and light commands start
#: without numpy, SimpleITK or torch.
COMMANDS = [
    ("info", "info_cmd", "print size, spacing, origin, direction, pixel type, value range (and DICOM series)"),
    ("convert", "convert_cmd", "convert a volume or DICOM folder to NIfTI, NRRD or MetaImage"),
    ("phantom", "phantom_cmd", "write digital abdominal phantom cases: CT, T1 in/opposed phase, T2, labels, body mask"),
    ("models", "models_cmd", "list, fetch, verify, import or remove model bundles"),
    ("synthesize", "synthesize_cmd", "synthetic CT from MRI (or synthetic MRI from CT), on the input's exact grid"),
    ("segment", "segment_cmd", "liver segmentation of MRI, as a label volume or a Slicer .seg.nrrd"),
    ("run", "run_cmd", "the whole pipeline: synthetic CT + liver segmentation + overlay pictures + JSON summary"),
    ("evaluate", "evaluate_cmd", "evaluate synthetic CTs against real ones: MAE/PSNR/SSIM/MS-SSIM, FID/KID, histograms, "
     "spectra, segmentation; writes metrics.json, per_case.csv, plots and an HTML report"),
    ("view", "view_cmd", "review a 'cmsynth run' output in a web browser: linked slice views, liver outline, 3D surface"),
    ("reader-study", "reader_study_cmd", "blind reader studies (visual Turing test): create, read in a web browser or a "
     "terminal, analyse"),
    ("worker", "worker_cmd", "a long-lived process running run/synthesize/segment requests (JSON lines on stdin) "
     "with its models kept loaded"),
]


def chosen_command(argv: List[str]) -> Optional[str]:
    """The command named in ``argv`` (its first word that is not an option), if it is one."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in {name for name, _, _ in COMMANDS} else None
    return None


def build_parser(only: Optional[str] = None, load_all: bool = True) -> argparse.ArgumentParser:
    """The ``cmsynth`` parser. Every command's module is imported and registered, unless ``load_all``
    is false: then only ``only``'s (or none), and the others are listed with their help line."""
    parser = argparse.ArgumentParser(
        prog="cmsynth",
        description="Cross-modality synthesis of abdominal images (MRI <-> CT): "
        "inspect and convert volumes, make phantom data, synthesise, segment, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, text in COMMANDS:
        if load_all or name == only:
            importlib.import_module(f"{__package__}.{module}").register(sub, text)
        else:
            sub.add_parser(name, help=text)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser(only=chosen_command(argv), load_all=False)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CMSynthError as exc:
        print(f"cmsynth {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # the reader of stdout went away (`cmsynth info X | head -1`): stop quietly, as Unix tools
        # do, with SIGPIPE's exit status; stdout goes to /dev/null so the final flush cannot fail
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except OSError as exc:
        from ..io.verify import is_no_space, no_space_error

        if not is_no_space(exc):
            raise
        print(f"cmsynth {args.command}: error: {no_space_error(exc.filename or '.')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"cmsynth {args.command}: interrupted; nothing partial was left behind.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
