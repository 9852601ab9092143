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

# module names under CrossModalitySynthLib.cli, in the order shown by --help
COMMANDS = ["info_cmd", "convert_cmd", "phantom_cmd", "models_cmd", "synthesize_cmd", "segment_cmd", "run_cmd", "evaluate_cmd", "reader_study_cmd"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmsynth",
        description="Cross-modality synthesis of abdominal images (MRI <-> CT): "
        "inspect and convert volumes, make phantom data, synthesise, segment, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"{__package__}.{name}")
        module.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
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
