"""``cmsynth reader-study``: create a blind reader study, answer it in a terminal, analyse it.

Subcommands: ``create`` (images, sessions and the answer key), ``session`` (an interactive
terminal session for one reader), ``answer`` (record one answer, for scripts), ``status``
(progress of each reader), ``serve`` (the study in readers' web browsers, :mod:`..web.gateway`),
``analyze`` (statistics and reports; needs the key).
"""

import os
import sys

from ..errors import ConfigError, InputError
from ..progress import Progress
from .overwrite_arg import add_overwrite_argument


def register(sub, help_text: str) -> None:
    p = sub.add_parser(
        "reader-study",
        help=help_text,
        description="Blind reader studies in which readers tell real from synthetic CT. 'create' writes the study "
        "folder for the readers and the answer key next to it (keep the key away from readers); 'session' and "
        "'answer' record answers; 'analyze' computes accuracy, sensitivity, specificity, AUC and kappas.",
    )
    rs = p.add_subparsers(dest="reader_study_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _help(p))

    c = rs.add_parser(
        "create",
        help="sample trials, prepare the images identically, write the study and its key",
        description="Write STUDY/ (study.json, sessions/<reader>.json, images/, answers/) and the answer key "
        "STUDY_key.json next to it. A reader never sees the real and the synthetic image of one patient; every "
        "image is prepared identically (fixed grid, HU clip, int16, uncompressed, no metadata, random name).",
    )
    src = c.add_argument_group("images (patient id = file name without suffix)")
    src.add_argument("--real", nargs="+", metavar="FILE|DIR", help="real CT files or folders")
    src.add_argument("--synthetic", nargs="+", metavar="FILE|DIR", help="synthetic CT files or folders")
    src.add_argument("--model-version", help="model version of the --synthetic files (default: unspecified)")
    src.add_argument("--cases", metavar="CSV", help="instead of --real/--synthetic: CSV with patient_id, real, synthetic, model_version")
    c.add_argument("--readers", nargs="+", required=True, metavar="N|ID", help="number of readers (ids R01 ...) or the reader ids")
    c.add_argument("--trials-per-reader", type=int, required=True, metavar="K", help="trials per reader")
    c.add_argument("--seed", type=int, default=0, help="random seed of the design (default 0)")
    c.add_argument("--mode", choices=["slices", "volumes"], default="slices", help="show 2D slices (default) or whole volumes")
    c.add_argument("--planes", nargs="+", choices=["axial", "coronal", "sagittal"], default=["axial"], help="slices mode: planes to draw from (default axial)")
    c.add_argument("--real-fraction", type=float, default=0.5, help="share of real trials per reader, never shown to readers (default 0.5)")
    c.add_argument("--window", nargs=2, type=float, default=[400.0, 40.0], metavar=("WIDTH", "LEVEL"), help="display window in HU (default 400 40)")
    c.add_argument("--allow-window-change", action="store_true", help="let readers change the window")
    c.add_argument("--allow-back", action="store_true", help="let readers go back and revise answers")
    c.add_argument("--design", choices=["crossed", "independent"], default="crossed", help="crossed: all readers read the same images (default); independent: each reader gets an own draw")
    c.add_argument("--slices-per-volume", type=int, default=1, help="slices mode: candidate slices drawn per volume (default 1)")
    c.add_argument("--max-per-patient", type=int, default=1, help="most images of one patient per reader (default 1)")
    c.add_argument("--format", choices=["nrrd", "nii", "nii.gz"], default="nrrd", help="image file format (default nrrd, uncompressed; nii.gz sizes vary with content)")
    c.add_argument("--size", nargs=3, type=int, default=[320, 320, 96], metavar=("NX", "NY", "NZ"), help="volumes mode: output grid in voxels (default 320 320 96)")
    c.add_argument("--spacing", nargs=3, type=float, default=[1.25, 1.25, 3.0], metavar=("SX", "SY", "SZ"), help="volumes mode: output spacing in mm (default 1.25 1.25 3)")
    c.add_argument("--slice-size", type=int, default=320, help="slices mode: in-plane voxels per side (default 320)")
    c.add_argument("--slice-spacing", type=float, default=1.25, help="slices mode: in-plane spacing in mm (default 1.25)")
    c.add_argument("--slice-thickness", type=float, default=3.0, help="slices mode: slice thickness in mm (default 3)")
    c.add_argument("--hu-range", nargs=2, type=float, default=[-1024.0, 3071.0], metavar=("LOW", "HIGH"), help="HU clip (default -1024 3071)")
    c.add_argument("--out", required=True, metavar="STUDY", help="new study folder; the key goes to STUDY_key.json beside it")
    c.set_defaults(func=run_create)

    s = rs.add_parser(
        "session",
        help="answer trials in a terminal: shows '12 / 60' and the image path, reads 'r 4' / 's 2' from stdin",
        description="Interactive session for one reader. For each trial it prints the trial number and the image "
        "path; type r (real) or s (synthetic) and a confidence 1-5, optionally a comment: 'r 4', 's 2 noisy'. "
        "'b' goes back (if the study allows), 'q' or end of input stops; run it again to resume.",
    )
    s.add_argument("study", help="study folder")
    s.add_argument("--reader", required=True, help="reader id")
    s.set_defaults(func=run_session)

    a = rs.add_parser("answer", help="record one answer for a reader's current trial (for scripts)")
    a.add_argument("study", help="study folder")
    a.add_argument("--reader", required=True, help="reader id")
    a.add_argument("--answer", required=True, help="real (r) or synthetic (s)")
    a.add_argument("--confidence", required=True, help="1 (guessing) to 5 (certain)")
    a.add_argument("--comment", help="optional free text")
    a.add_argument("--trial", type=int, help="the trial the answer is meant for: refused unless it is the current one, or an earlier one in a study that allows going back (then a revision)")
    a.add_argument("--response-time", type=float, help="seconds the reader took")
    a.set_defaults(func=run_answer)

    st = rs.add_parser("status", help="progress of each reader")
    st.add_argument("study", help="study folder")
    st.add_argument("--reader", help="only this reader, with the current trial's image")
    st.set_defaults(func=run_status)

    sv = rs.add_parser(
        "serve",
        help="serve the study to readers' web browsers: one secret link per reader (needs the 'web' extra)",
        description="Serve STUDY over HTTP: each reader opens their own link and answers one trial at a time in a "
        "Slicer slice view (keys R / S, 1-5, Enter). Answers go into STUDY/answers/ exactly as a Slicer or terminal "
        "session writes them. The links (random tokens) are kept in STUDY_web_tokens.json beside the study, so they "
        "work again after a restart. The answer key is never read. Binds to 127.0.0.1 unless --host says otherwise; "
        "for a hospital network put a TLS reverse proxy in front (see docs/reader_studies.md).",
    )
    sv.add_argument("study", help="study folder")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    sv.add_argument("--log-dir", metavar="DIR", help="write each reader page's log here (default: discarded)")
    sv.set_defaults(func=run_serve)

    an = rs.add_parser(
        "analyze",
        help="accuracy, sensitivity, specificity, AUC, kappas; CSV, markdown, HTML and ROC plot",
        description="Join the readers' answers with the answer key and write readers.csv, kappa.csv, "
        "model_versions.csv, readings.csv, roc.png, report.md and report.html into DIR.",
    )
    an.add_argument("study", help="study folder")
    an.add_argument("--key", required=True, help="the answer key STUDY_key.json")
    an.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    add_overwrite_argument(an, "each result file")
    an.set_defaults(func=run_analyze)


def _help(parser) -> int:
    parser.print_help()
    return 2


# --------------------------------------------------------------------------- create


def run_create(args) -> int:
    from ..reader_study.design import parse_reader_ids, sources_from_csv, sources_from_files
    from ..reader_study.prepare import PrepareSettings
    from ..reader_study.study import create_study

    if args.cases and (args.real or args.synthetic):
        raise ConfigError("Give either --cases CSV or --real/--synthetic files, not both.")
    if args.cases:
        if args.model_version:
            raise ConfigError("--model-version applies to --synthetic files; put model versions in the CSV's model_version column.")
        sources = sources_from_csv(args.cases)
    else:
        if not args.real or not args.synthetic:
            raise ConfigError("Give --real and --synthetic files or folders (or a --cases CSV).")
        sources = sources_from_files(args.real, args.synthetic, args.model_version)
    readers = parse_reader_ids(args.readers)
    settings = PrepareSettings(
        mode=args.mode,
        size=tuple(args.size),
        spacing=tuple(args.spacing),
        slice_size=args.slice_size,
        slice_spacing=args.slice_spacing,
        slice_thickness=args.slice_thickness,
        hu_range=tuple(args.hu_range),
        file_format=args.format,
    )
    if args.format == "nii.gz":
        print(
            "warning: .nii.gz files are compressed, so their sizes vary with the image content (smooth images "
            "compress better) and may hint at the answer; nrrd or nii give equal sizes.",
            file=sys.stderr,
        )
    with Progress(unit="image") as bar:
        study_dir, key_path = create_study(
            args.out, sources, readers, args.trials_per_reader, args.real_fraction, args.seed, settings,
            planes=args.planes, window=tuple(args.window), allow_window_change=args.allow_window_change,
            allow_back=args.allow_back, slices_per_volume=args.slices_per_volume, max_per_patient=args.max_per_patient,
            design=args.design, progress=lambda done, total: bar("preparing images", done, total),
        )
    print(f"study: {study_dir}")
    print(f"answer key: {key_path}")
    print("Give the readers the study folder only; keep the answer key away from them.")
    return 0


# --------------------------------------------------------------------------- reader side

PROMPT = "answer: r/s and confidence 1-5 (e.g. 'r 4', 's 2 comment'){}, q = quit > "


def parse_reply(text: str):
    """'r 4 optional comment' -> ("real", 4, "optional comment"); also 'r4', 'synthetic 2'."""
    from ..reader_study.session import check_confidence, normalise_answer

    text = text.strip()
    if not text:
        raise InputError("Type r (real) or s (synthetic) and a confidence from 1 to 5, e.g. 'r 4'.")
    first, _, rest = text.partition(" ")
    if len(first) >= 2 and first[-1].isdigit() and not first[-2].isdigit():  # 'r4'
        rest = (first[-1] + " " + rest).strip()
        first = first[:-1]
    answer = normalise_answer(first)
    conf_text, _, comment = rest.strip().partition(" ")
    if not conf_text:
        raise InputError("A confidence from 1 (guessing) to 5 (certain) is needed after the answer, e.g. 'r 4'.")
    return answer, check_confidence(conf_text), comment.strip() or None


def run_session(args) -> int:
    from ..reader_study.session import ReaderSession, SessionFinishedError

    session = ReaderSession(args.study, args.reader)
    if session.finished:
        session.start_trial()  # raises the clear "finished" error
    while not session.finished:
        trial = session.start_trial()
        print(f"{trial.label}  {trial.path}", flush=True)
        while True:
            sys.stderr.write(PROMPT.format(", b = back" if session.can_go_back else ""))
            sys.stderr.flush()
            line = sys.stdin.readline()
            if not line or line.strip().lower() in ("q", "quit", "exit"):
                print(f"stopped: {session.n_answered} / {session.n_trials} answered; run the same command to resume.", flush=True)
                return 0
            if line.strip().lower() == "b":
                try:
                    session.go_back()
                except InputError as exc:
                    print(str(exc), file=sys.stderr)
                    continue
                break
            try:
                answer, confidence, comment = parse_reply(line)
                session.answer(answer, confidence, comment)
            except SessionFinishedError:
                raise
            except InputError as exc:
                print(str(exc), file=sys.stderr)
                continue
            break
    print(f"finished: {session.n_answered} / {session.n_trials} answered.", flush=True)
    return 0


def run_answer(args) -> int:
    from ..reader_study.session import ReaderSession

    session = ReaderSession(args.study, args.reader)
    if args.trial is not None and not session.finished and args.trial != session.position:
        session.go_to(args.trial)  # an earlier trial: only where the study allows going back
    session.answer(args.answer, args.confidence, args.comment, response_time_s=args.response_time, trial_index=args.trial)
    if session.finished:
        print(f"finished: {session.n_answered} / {session.n_trials} answered.")
    else:
        trial = session.current_trial
        print(f"{trial.label}  {trial.path}")
    return 0


def run_status(args) -> int:
    from ..reader_study.session import ReaderSession
    from ..reader_study.study import Study

    study = Study.load(args.study)
    readers = [study.check_reader(args.reader)] if args.reader else study.readers
    for rid in readers:
        session = ReaderSession(study, rid)
        state = "finished" if session.finished else f"next {session.current_trial.label}"
        print(f"{rid}: {session.n_answered} / {session.n_trials} answered, {state}")
        if args.reader and not session.finished:
            print(session.current_trial.path)
    return 0


def run_serve(args) -> int:
    from ..web.gateway import serve

    if args.log_dir and not os.path.isdir(args.log_dir):
        raise InputError(f"The log folder {args.log_dir} does not exist; create it first.")
    return serve(args.study, host=args.host, port=args.port, log_dir=args.log_dir)


def run_analyze(args) -> int:
    from ..reader_study.analysis import analyze_study
    from ..reader_study.report import summary_lines, write_report

    results = analyze_study(args.study, args.key)
    paths = write_report(results, args.out, overwrite=args.overwrite)
    for line in summary_lines(results):
        print(line)
    for p in paths:
        print(p)
    return 0
