"""Batch runs over a folder of case folders or a CSV of cases; finished cases are skipped.

Folder layout: ``ROOT/<case_id>/<input name>.<ext>`` for each of the model's input names
(``t1_in``, ``t1_opp``, ``t2``, ``ct``; any supported format, or a DICOM sub-folder of that
name), optionally ``<reference name>.<ext>`` for metrics. This is the phantom's layout. A
folder holding some but not all of the inputs is a case that fails (the missing ones named);
a folder holding none of them is not a case.

CSV columns: ``case_id``, one column per input name, optional ``reference_ct``.
"""

import csv
import os
from typing import Callable, List, Optional

from ..errors import CMSynthError, InputError
from ..inference import CancelToken, Cancelled, LoadedModel
from ..io.formats import SUPPORTED_READ
from .clinical import SUMMARY, CaseInputs, run_case

_EXTS = [e for e in SUPPORTED_READ if e.startswith(".")]


def _find_file(folder: str, stem: str) -> Optional[str]:
    for ext in _EXTS:
        p = os.path.join(folder, stem + ext)
        if os.path.isfile(p):
            return p
    p = os.path.join(folder, stem)
    return p if os.path.isdir(p) else None


def find_cases(source: str, input_names: List[str], reference_name: Optional[str] = None) -> List[CaseInputs]:
    """Cases from a folder of case folders or a CSV file (see the module docstring)."""
    if not os.path.exists(source):
        raise InputError(f"No such file or folder: {source}.")
    cases = []
    if os.path.isfile(source):
        with open(source, newline="") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            missing = [c for c in ["case_id"] + input_names if c not in cols]
            if missing:
                raise InputError(f"{source} lacks the column(s) {', '.join(missing)}; expected case_id, "
                                 f"{', '.join(input_names)}[, reference_ct].")
            base = os.path.dirname(os.path.abspath(source))
            for row in reader:
                paths = [os.path.join(base, row[n]) if row[n] else None for n in input_names]
                ref = row.get("reference_ct") or None
                empty = [n for n, p in zip(input_names, paths) if p is None]
                problem = f"no {', '.join(empty)} given in {source}" if empty else None
                cases.append(CaseInputs(row["case_id"], paths, os.path.join(base, ref) if ref else None, input_names,
                                        problem))
    else:
        for cid in sorted(os.listdir(source)):
            folder = os.path.join(source, cid)
            if cid.startswith(".") or not os.path.isdir(folder):
                continue
            paths = [_find_file(folder, n) for n in input_names]
            if all(p is None for p in paths):
                continue  # not a case folder
            missing = [n for n, p in zip(input_names, paths) if p is None]
            problem = (f"incomplete: no {', '.join(missing)} in {folder} (a file {missing[0]}.nii.gz, .nrrd, .mha ... "
                       f"or a DICOM folder {missing[0]}/)") if missing else None
            ref = _find_file(folder, reference_name) if reference_name else None
            cases.append(CaseInputs(cid, paths, ref, input_names, problem))
    if not cases:
        raise InputError(f"{source} holds no cases with the inputs {', '.join(input_names)}; "
                         "see 'cmsynth run --help' for the batch layout.")
    ids = [c.case_id for c in cases]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InputError(f"{source} lists case id(s) {', '.join(dup)} more than once; case ids must be unique.")
    return cases


def run_batch(
    cases: List[CaseInputs],
    synth: LoadedModel,
    out_root: str,
    seg: Optional[LoadedModel] = None,
    progress=None,
    cancel: Optional[CancelToken] = None,
    log: Callable[[str], None] = print,
) -> List[dict]:
    """Run every case into ``out_root/<case_id>``; returns one status row per case.

    A case whose ``summary.json`` exists is skipped; a failing case, or one with a ``problem``
    (an input missing), is recorded as failed with the reason and the batch goes on; a cancel stops the batch (finished cases stay).
    """
    os.makedirs(out_root, exist_ok=True)
    rows = []
    for i, case in enumerate(cases, 1):
        out = os.path.join(out_root, case.case_id)
        if os.path.isfile(os.path.join(out, SUMMARY)):
            rows.append({"case_id": case.case_id, "status": "skipped (finished before)", "output": out})
            log(f"[{i}/{len(cases)}] {case.case_id}: already done, skipped")
            continue
        if case.problem:
            rows.append({"case_id": case.case_id, "status": f"failed: {case.problem}", "output": ""})
            log(f"[{i}/{len(cases)}] {case.case_id}: FAILED: {case.problem}")
            continue
        try:
            summary = run_case(case, synth, out, seg=seg, overwrite=True, progress=progress, cancel=cancel)
        except Cancelled:
            raise
        except CMSynthError as exc:
            rows.append({"case_id": case.case_id, "status": f"failed: {exc}", "output": ""})
            log(f"[{i}/{len(cases)}] {case.case_id}: FAILED: {exc}")
            continue
        mae = summary.get("metrics", {}).get("mae_hu")
        rows.append({"case_id": case.case_id, "status": "done", "output": out,
                     "seconds": summary["timings_s"]["total"], "mae_hu": mae,
                     "liver_volume_ml": summary.get("liver_volume_ml")})
        log(f"[{i}/{len(cases)}] {case.case_id}: done in {summary['timings_s']['total']:.1f} s"
            + (f", MAE {mae:.1f} HU" if mae is not None else ""))
    return rows
