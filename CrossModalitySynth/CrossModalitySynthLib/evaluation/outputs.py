"""Writing an evaluation's output folder atomically.

Everything (metrics.json, per_case.csv, plots/*.png, report.html) is written into a hidden
temporary folder beside the target and renamed onto it only when complete, so an error or an
interruption never leaves a partial output folder. An existing non-empty folder is refused
unless ``overwrite`` is given; it is then replaced only after the new one is complete.
"""

import csv
import json
import math
import os
import tempfile
from typing import List

import numpy as np

from .. import __version__
from ..errors import OutputError
from ..io import atomic_folder
from ..io.writer import check_folder_replaceable
from .plots import make_plots
from .report import render_report
from .runner import SEG_KEYS, EvaluationResult

#: every file an evaluation folder may hold: --overwrite replaces a folder holding nothing else
OUTPUTS = ("metrics.json", "per_case.csv", "report.html", "plots/*")


def check_output_dir(path: str, overwrite: bool = False) -> str:
    """Validate the output folder before any work: refuse a file, an existing non-empty folder
    (without ``overwrite``) and a missing or unwritable parent. Returns the absolute path."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError("{} is a file; give a folder for the evaluation output.".format(path))
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise OutputError("The output folder {} exists and is not empty; choose another --out or pass --overwrite.".format(path))
    check_folder_replaceable(path, overwrite, OUTPUTS, "cmsynth evaluate")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise OutputError("The folder {} does not exist; create it first or choose another --out.".format(parent))
    try:
        probe = tempfile.mkdtemp(prefix=".cmsynth-probe-", dir=parent)
    except OSError:
        raise OutputError("Cannot write in {}; choose a writable location for --out.".format(parent)) from None
    os.rmdir(probe)
    return path


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(float(v))
    return str(v)


def per_case_table(result: EvaluationResult) -> List[dict]:
    """The rows of per_case.csv (column name -> value); units are in the column names."""
    rows = []
    if result.paired:
        for c in result.cases:
            row = {"case_id": c["case_id"], "real": c["real"], "synthetic": c["synthetic"],
                   "mask": c["mask"] or "", "mask_source": c["mask_source"], "n_mask_voxels": c["n_mask_voxels"],
                   "mae_hu": c["mae"], "psnr_db": c["psnr"], "ssim": c["ssim"], "ms_ssim": c["ms_ssim"],
                   "hist_js_bits": c["histogram"]["js_bits"], "hist_wasserstein_hu": c["histogram"]["wasserstein"],
                   "hist_intersection": c["histogram"]["intersection"]}
            for lab in result.segmentation_labels:
                s = c.get("segmentation", {}).get(str(lab), {})
                for k in SEG_KEYS:
                    unit = "_mm" if k in ("hd95", "msd") else ""
                    row["{}{}_label{}".format(k, unit, lab)] = s.get(k)
            rows.append(row)
    else:
        for c in result.cases:
            rows.append({"set": c["set"], "case_id": c["case_id"], "path": c["path"], "mask": c["mask"] or "",
                         "mask_source": c["mask_source"], "n_mask_voxels": c["n_mask_voxels"],
                         "mean_hu": c["mean_hu"], "std_hu": c["std_hu"], "median_hu": c["median_hu"]})
    return rows


def _write_csv(rows: List[dict], path: str) -> None:
    fields = list(rows[0].keys()) if rows else []
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_value(r.get(k)) for k in fields})


def write_outputs(result: EvaluationResult, out_dir: str, overwrite: bool = False, command: str = "") -> str:
    """Write metrics.json, per_case.csv, plots/ and report.html into ``out_dir``, atomically."""
    out_dir = check_output_dir(out_dir, overwrite)
    with atomic_folder(out_dir, overwrite, OUTPUTS, "cmsynth evaluate", check=False) as tmp:
        plot_dir = os.path.join(tmp, "plots")
        figures = make_plots(result, plot_dir)
        doc = result.as_dict()
        doc = dict([("tool", "cmsynth evaluate"), ("version", __version__), ("command", command)] + list(doc.items()))
        doc["plots"] = ["plots/" + f for _, f, _ in figures]
        with open(os.path.join(tmp, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, allow_nan=False)
            f.write("\n")
        _write_csv(per_case_table(result), os.path.join(tmp, "per_case.csv"))
        with open(os.path.join(tmp, "report.html"), "w", encoding="utf-8") as f:
            f.write(render_report(result, figures, plot_dir))
    return out_dir

