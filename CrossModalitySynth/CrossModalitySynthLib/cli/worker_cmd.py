"""``cmsynth worker``: one long-lived process that runs ``run``, ``synthesize`` and ``segment``
requests, read as one JSON object per line on stdin, with their models kept loaded.

A request names the command and its options by their command-line names, e.g.::

    {"id": "r1", "command": "synthesize", "args": {"model": "demo-t1dual-to-ct",
     "out": "s.nii.gz", "inputs": ["t1_in.nii.gz", "t1_opp.nii.gz"], "overwrite": true}}

(``inputs`` are the positional INPUTs; ``true`` gives a flag, ``false`` or ``null`` leaves it out;
a list gives several values). It is parsed by the command's own parser and run by the command's
own code with ``--progress json``, so the worker writes on stdout exactly the progress lines and
the final ``{"stage": "done", ...}`` object that command writes, with ``"id"`` and
``"models_already_loaded"`` added. A request that fails, and a line that is not a request,
answer ``{"stage": "error", "id": ..., "error": "<one sentence>"}`` and the worker goes on. End of
stdin ends it.
"""

import contextlib
import io
import json
import sys

COMMANDS = ("run", "synthesize", "segment")
MAX_LINE = 1 << 20  # bytes: a request is a few hundred


def register(sub, help_text: str) -> None:
    p = sub.add_parser(
        "worker",
        help=help_text,
        description=__doc__.split("\n\n")[0].replace("\n", " ") + " Requests and answers: see the "
        "documentation (command line, cmsynth worker).",
    )
    p.add_argument("--max-models", type=int, default=4, help="models kept loaded at most (default 4)")
    p.add_argument("--max-model-mb", type=float, default=None,
                   help="memory cap of the kept models, counted as their bundles' file sizes (default: none)")
    p.set_defaults(func=run)


def request_argv(req) -> list:
    """The command line of one request (see the module docstring); ValueError for a bad request."""
    if not isinstance(req, dict):
        raise ValueError("a request is a JSON object with 'command' and 'args'")
    command = req.get("command")
    if command not in COMMANDS:
        raise ValueError(f"the worker runs {', '.join(COMMANDS)} requests, not {command!r}")
    args = req.get("args") or {}
    if not isinstance(args, dict):
        raise ValueError("'args' must be an object of option names and values")
    if "progress" in args:
        raise ValueError("'progress' is set by the worker (json)")
    argv = [command]
    inputs = args.get("inputs") or []
    if not isinstance(inputs, list):
        raise ValueError("'inputs' must be a list of paths")
    for name, value in args.items():
        if name == "inputs" or value is None or value is False:
            continue
        flag = "--" + str(name).replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag] + [str(v) for v in value]
        else:
            argv += [flag, str(value)]
    return argv + ["--progress", "json", "--"] + [str(p) for p in inputs]


def _answer(obj) -> None:
    print(json.dumps(obj), flush=True)


def _error(req_id, message: str) -> None:
    _answer({"stage": "error", "id": req_id, "error": message})


def run(args) -> int:
    from ..errors import CMSynthError
    from ..inference.model_cache import ModelCache
    from . import engine_args
    from .main import build_parser

    if args.max_models < 1:
        from ..errors import ConfigError

        raise ConfigError("--max-models must be at least 1.")
    max_bytes = None if args.max_model_mb is None else int(args.max_model_mb * 1024 * 1024)
    cache = ModelCache(args.max_models, max_bytes)
    for line in sys.stdin:
        if not line.strip():
            continue
        req_id = None
        try:
            if len(line) > MAX_LINE:
                raise ValueError(f"a request line is at most {MAX_LINE} bytes")
            req = json.loads(line)
            req_id = req.get("id") if isinstance(req, dict) else None
            argv = request_argv(req)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            _error(req_id, f"Not a request ({exc}); send one JSON object per line: "
                           '{"id": ..., "command": "run", "args": {...}}.')
            continue
        parser = build_parser(only=argv[0], load_all=False)
        usage = io.StringIO()
        try:
            with contextlib.redirect_stderr(usage):
                ns = parser.parse_args(argv)
        except SystemExit:
            lines = [ln for ln in usage.getvalue().splitlines() if ln.strip()]
            _error(req_id, lines[-1] if lines else "the request's options were refused")
            continue
        cache.new_request()
        engine_args.use_model_cache(cache, {"id": req_id})
        try:
            code = int(ns.func(ns) or 0)
            if code:
                _error(req_id, f"{argv[0]} ended with exit code {code}")
        except CMSynthError as exc:
            _error(req_id, str(exc))
        except OSError as exc:
            from ..io.verify import is_no_space, no_space_error

            _error(req_id, str(no_space_error(exc.filename or ".")) if is_no_space(exc) else
                   f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug in one request must not end the session
            import traceback

            traceback.print_exc(file=sys.stderr)
            _error(req_id, f"internal error ({type(exc).__name__}: {exc}); please report it")
        finally:
            engine_args.use_model_cache(None)
    return 0
