"""The study folder, its answer key, and :func:`create_study`.

Layout written by :func:`create_study` (``STUDY`` is the ``--out`` folder)::

    STUDY/study.json               study id and the settings readers may see (never the real/synthetic ratio)
    STUDY/sessions/<reader>.json   the reader's ordered trials: index, pseudonymous image id, file, plane
    STUDY/images/t_8f3a2c.nrrd     the prepared images, named by random pseudonymous ids
    STUDY/answers/<reader>.jsonl   the answer logs (appended by :mod:`.session`)
    STUDY_key.json                 the answer key, NEXT TO the folder: truth, patient id, model version
                                   and source file of every image id; coordinators keep it from readers

The folder is built under a temporary name beside ``STUDY`` and renamed at the end: a failure
leaves neither a half-written study nor a key. The images are written in a random order (not
grouped by truth) and all get the same modification time, so neither the folder listing, the
inode order nor the file times follow the truth.
"""

import datetime
import json
import os
import random
import secrets
import shutil
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import ConfigError, InputError, OutputError
from ..io import atomic_folder, read_volume, write_volume
from .design import PLANES, StudyPlan, SourceImage, make_plan
from .prepare import PrepareSettings, SourcePreparer

STUDY_FILE = "study.json"
SESSIONS_DIR = "sessions"
ANSWERS_DIR = "answers"
IMAGES_DIR = "images"
STUDY_FORMAT = "cmsynth-reader-study"
KEY_FORMAT = "cmsynth-reader-study-key"
FORMAT_VERSION = 1

INSTRUCTIONS = (
    "Each image is a CT of the abdomen; some are real scans, some were synthesised by a computer model. "
    "For each image, answer 'real' or 'synthetic' and how confident you are, from 1 (guessing) to 5 (certain). "
    "You get no feedback on your answers."
)


def utc_now() -> str:
    """The current UTC time as ISO 8601 with milliseconds and a 'Z'."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + "{:03d}Z".format(now.microsecond // 1000)


def key_path_for(study_dir: str) -> str:
    """``STUDY_key.json`` beside the folder ``STUDY``."""
    return os.path.normpath(os.path.abspath(os.fspath(study_dir))) + "_key.json"


def _read_json(path: str, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path} is missing: this is not a complete {what}; check the path.") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} cannot be read as JSON ({exc}); the {what} is damaged, restore it from a copy.") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a {what} file (it holds no JSON object); check the path.")
    return data


def write_json_atomic(path: str, data, overwrite: bool = False) -> str:
    """Write JSON to a temporary file beside ``path``, fsync it, then rename it onto ``path``."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path} already exists; choose another name or remove it first.")
    fd, tmp = tempfile.mkstemp(prefix=".cmsynth-tmp-", suffix=".json", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


class Study:
    """A study folder as readers get it (no truth in it)."""

    def __init__(self, root: str, data: dict):
        self.root = root
        self.data = data

    @classmethod
    def load(cls, root: str) -> "Study":
        root = os.path.abspath(os.fspath(root))
        if not os.path.isdir(root):
            raise InputError(f"No such study folder: {root}; give the folder written by 'cmsynth reader-study create'.")
        data = _read_json(os.path.join(root, STUDY_FILE), "reader study")
        if data.get("format") != STUDY_FORMAT or not data.get("study_id"):
            raise InputError(f"{os.path.join(root, STUDY_FILE)} is not a reader-study file; give the folder written by 'cmsynth reader-study create'.")
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise InputError(f"The study {root} was written by a newer CrossModalitySynth; update it to read this study.")
        return cls(root, data)

    @property
    def study_id(self) -> str:
        return str(self.data["study_id"])

    @property
    def readers(self) -> List[str]:
        return list(self.data.get("readers", []))

    @property
    def mode(self) -> str:
        return str(self.data.get("mode", "slices"))

    @property
    def window(self) -> Tuple[float, float]:
        w = self.data.get("window", {})
        return float(w.get("width", 400.0)), float(w.get("level", 40.0))

    @property
    def allow_back(self) -> bool:
        return bool(self.data.get("allow_back", False))

    @property
    def allow_window_change(self) -> bool:
        return bool(self.data.get("allow_window_change", False))

    def session_file(self, reader_id: str) -> str:
        return os.path.join(self.root, SESSIONS_DIR, reader_id + ".json")

    def log_file(self, reader_id: str) -> str:
        return os.path.join(self.root, ANSWERS_DIR, reader_id + ".jsonl")

    def check_reader(self, reader_id: str) -> str:
        if reader_id not in self.readers:
            known = ", ".join(self.readers[:10]) + (" ..." if len(self.readers) > 10 else "")
            raise InputError(f"Reader '{reader_id}' is not part of this study; use one of: {known}.")
        return reader_id

    def load_trials(self, reader_id: str) -> List[dict]:
        """The reader's trials (dicts with index, image_id, file, plane), checked."""
        self.check_reader(reader_id)
        path = self.session_file(reader_id)
        data = _read_json(path, "reader session")
        if data.get("study_id") != self.study_id:
            raise InputError(
                f"{path} belongs to study {data.get('study_id')}, not to this study ({self.study_id}); "
                "restore the session file of this study."
            )
        if data.get("reader_id") != reader_id:
            raise InputError(f"{path} is the session of reader '{data.get('reader_id')}', not '{reader_id}'; restore it.")
        trials = data.get("trials")
        if not isinstance(trials, list) or not trials:
            raise InputError(f"{path} lists no trials; the session file is damaged, restore it.")
        for i, t in enumerate(trials, start=1):
            if int(t.get("index", -1)) != i or not t.get("image_id") or not t.get("file"):
                raise InputError(f"{path}: trial {i} is incomplete; the session file is damaged, restore it.")
        return trials

    def image_path(self, relative: str) -> str:
        return os.path.join(self.root, *relative.split("/"))


# --------------------------------------------------------------------------- key


def load_key(path: str, study: Optional[Study] = None) -> dict:
    """Read an answer key; with ``study``, check that it belongs to it (study id)."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise InputError(f"No such answer key: {path}; give the STUDY_key.json written next to the study folder.")
    key = _read_json(path, "reader-study answer key")
    if key.get("format") != KEY_FORMAT or not isinstance(key.get("images"), dict):
        raise InputError(f"{path} is not a reader-study answer key; give the STUDY_key.json written with the study.")
    if study is not None and key.get("study_id") != study.study_id:
        raise InputError(
            f"The key {path} belongs to study {key.get('study_id')}, not to {study.root} (study {study.study_id}); "
            "give the key written together with this study."
        )
    return key


# --------------------------------------------------------------------------- create


def _new_ids(n: int, taken=()) -> List[str]:
    ids, seen = [], set(taken)
    while len(ids) < n:
        candidate = "t_" + secrets.token_hex(3)
        if candidate not in seen:
            seen.add(candidate)
            ids.append(candidate)
    return ids


def create_study(
    out: str,
    sources: Sequence[SourceImage],
    reader_ids: Sequence[str],
    trials_per_reader: int,
    real_fraction: float = 0.5,
    seed: int = 0,
    settings: Optional[PrepareSettings] = None,
    planes: Sequence[str] = ("axial",),
    window: Tuple[float, float] = (400.0, 40.0),
    allow_window_change: bool = False,
    allow_back: bool = False,
    slices_per_volume: int = 1,
    max_per_patient: int = 1,
    design: str = "crossed",
    progress: Optional[Callable[[int, int], None]] = None,
) -> Tuple[str, str]:
    """Draw the trials, prepare the images and write the study folder and its key.

    Returns ``(study_dir, key_path)``. Raises ConfigError / InputError / OutputError (nothing is
    left behind then). ``progress(done, total)`` is called after each prepared image.
    """
    settings = settings or PrepareSettings()
    out = os.path.normpath(os.path.abspath(os.fspath(out)))
    key_path = key_path_for(out)
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        raise OutputError(f"Output folder {parent} does not exist; create it first.")
    if os.path.exists(out):
        raise OutputError(f"{out} already exists; choose a new folder for the study.")
    if os.path.exists(key_path):
        raise OutputError(f"{key_path} already exists; choose another study name or move the old key away.")
    width, level = (float(v) for v in window)
    if not width > 0:
        raise ConfigError(f"--window needs a positive width; got {width:g}.")
    planes = list(dict.fromkeys(planes))
    if settings.mode == "slices" and (not planes or any(p not in PLANES for p in planes)):
        raise ConfigError("--planes takes axial, coronal and/or sagittal.")

    plan: StudyPlan = make_plan(
        sources, reader_ids, trials_per_reader, real_fraction, seed, settings.mode, planes,
        slices_per_volume, max_per_patient, design,
    )
    used = plan.used()
    names = dict(zip(used, _new_ids(len(used))))
    study_id = "rs_" + secrets.token_hex(8)
    created = utc_now()

    key_written = False
    try:
        with atomic_folder(out, False, (), "cmsynth reader-study create", check=False) as tmp:
            for sub in (IMAGES_DIR, SESSIONS_DIR, ANSWERS_DIR):
                os.makedirs(os.path.join(tmp, sub))
            key_images = _write_images(plan, used, names, settings, os.path.join(tmp, IMAGES_DIR), progress)
            study = {
                "format": STUDY_FORMAT,
                "format_version": FORMAT_VERSION,
                "study_id": study_id,
                "created": created,
                "mode": settings.mode,
                "planes": planes if settings.mode == "slices" else [],
                "window": {"width": width, "level": level},
                "allow_window_change": bool(allow_window_change),
                "allow_back": bool(allow_back),
                "trials_per_reader": int(trials_per_reader),
                "readers": list(reader_ids),
                "answers": ["real", "synthetic"],
                "confidence": {"min": 1, "max": 5, "meaning": "1 = guessing ... 5 = certain"},
                "instructions": INSTRUCTIONS,
                "image_format": settings.file_format,
                "preparation": settings.to_dict(),
            }
            write_json_atomic(os.path.join(tmp, STUDY_FILE), study)
            for rid, trials in plan.readers.items():
                session = {
                    "study_id": study_id,
                    "reader_id": rid,
                    "trials": [
                        {
                            "index": i,
                            "image_id": names[p],
                            "file": IMAGES_DIR + "/" + names[p] + settings.suffix,
                            "plane": plan.pool[p].plane,
                        }
                        for i, p in enumerate(trials, start=1)
                    ],
                }
                write_json_atomic(os.path.join(tmp, SESSIONS_DIR, rid + ".json"), session)
            key = {
                "format": KEY_FORMAT,
                "format_version": FORMAT_VERSION,
                "notice": "Answer key of a blind reader study: keep it away from the readers.",
                "study_id": study_id,
                "study_folder": out,
                "created": created,
                "seed": int(seed),
                "real_fraction": float(real_fraction),
                "design": design,
                "max_per_patient": int(max_per_patient),
                "slices_per_volume": int(slices_per_volume),
                "images": key_images,
                "readers": {rid: [names[p] for p in trials] for rid, trials in plan.readers.items()},
            }
            _make_readable(tmp)
            write_json_atomic(key_path, key)  # private to its owner (0600), like every temporary file
            key_written = True
    except BaseException:  # the study folder was not made: its key goes too
        if key_written and os.path.exists(key_path):
            os.remove(key_path)
        raise
    return out, key_path


def _make_readable(root: str) -> None:
    """Give the study folder the usual permissions (umask applied): temporary files and folders
    are created private, but readers on a shared drive must be able to read the study."""
    mask = os.umask(0)
    os.umask(mask)
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o777 & ~mask)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o666 & ~mask)


def _write_images(plan: StudyPlan, used, names, settings: PrepareSettings, folder: str, progress) -> Dict[str, dict]:
    """Prepare and write every used pool image; returns the key's ``images`` table."""
    by_source: Dict[SourceImage, List[int]] = {}
    for p in used:
        by_source.setdefault(plan.pool[p].source, []).append(p)
    order = list(by_source)
    random.SystemRandom().shuffle(order)  # write order independent of the truth
    images: Dict[str, dict] = {}
    done, total = 0, len(used)
    stamp = None
    for src in order:
        preparer = SourcePreparer(read_volume(src.path), settings, name=src.path)
        pool_items = by_source[src]
        random.SystemRandom().shuffle(pool_items)
        for p in pool_items:
            item = plan.pool[p]
            position_mm = None
            if settings.mode == "volumes":
                image = preparer.volume()
            else:
                image, position_mm = preparer.slice(item.plane, item.position)
            target = os.path.join(folder, names[p] + settings.suffix)
            write_volume(image, target, compress=settings.file_format == "nii.gz")
            images[names[p]] = {
                "truth": src.truth,
                "patient_id": src.patient_id,
                "model_version": src.model_version,
                "source": src.path,
                "plane": item.plane,
                "position_fraction": item.position,
                "position_mm": position_mm,
            }
            done += 1
            if progress is not None:
                progress(done, total)
    # one modification time for all images
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if stamp is None:
            stamp = os.stat(path).st_mtime
        os.utime(path, (stamp, stamp))
    return {k: images[k] for k in sorted(images)}
