"""Writing reader-study results: CSV tables, a markdown and a self-contained HTML report, an ROC plot.

Files written to the output folder (all written atomically; existing ones are refused unless
``overwrite``):

* ``readers.csv``: one row per reader and a ``pooled`` row (accuracy, sensitivity, specificity
  with exact CIs, p against 0.5, AUC with DeLong CI, median response time, progress);
* ``kappa.csv``: Cohen's kappa per reader pair (with the number of common images);
* ``model_versions.csv``: per model version (pooled and per reader): how often its images were
  caught and the AUC against the real images;
* ``readings.csv``: every reading joined with the truth (unblinded: for the coordinators);
* ``roc.png``: ROC curves per reader and pooled, from the 10-level confidence score;
* ``report.md`` and ``report.html`` (the plot embedded; no external files or scripts).
"""

import base64
import csv
import html
import io
import math
import os
import tempfile
from typing import Dict, List, Sequence

from ..errors import OutputError
from .analysis import POOLED, Proportion, StudyResults

FILES = ("readers.csv", "kappa.csv", "model_versions.csv", "readings.csv", "roc.png", "report.md", "report.html")

METHODS = (
    "Real is the positive class. Accuracy, sensitivity and specificity carry exact binomial "
    "(Clopper-Pearson) 95% CIs; p is the two-sided exact binomial test against 0.5 (chance). "
    "The AUC is the Mann-Whitney statistic of a 10-level score made from answer and confidence "
    "(real/5 = 10 ... real/1 = 6, synthetic/1 = 5 ... synthetic/5 = 1), with a DeLong standard error "
    "and a normal 95% CI clipped to [0, 1]. Cohen's kappa is computed for each reader pair on the "
    "images both read (pairs without common images get none); Fleiss' kappa over the images read by "
    "the same number of readers. Pooled figures treat all readings as independent; readings of shared "
    "images are correlated, so pooled CIs are optimistic. The latest answer of each trial counts."
)


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def _fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _ci(p: Proportion) -> str:
    return f"{_fmt(p.value)} [{_fmt(p.ci_low)}, {_fmt(p.ci_high)}]"


def _num(v):
    """CSV cell: '' for missing / NaN, else the value."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return v


# --------------------------------------------------------------------------- tables


def reader_rows(results: StudyResults) -> List[Dict]:
    rows = []
    for r in list(results.readers) + [results.pooled]:
        if r.reader_id == POOLED:
            total = sum(t for _, t in results.progress.values()) or None
        else:
            total = results.progress.get(r.reader_id, (r.n, None))[1]
        rows.append(
            {
                "reader": r.reader_id,
                "n": r.n,
                "n_real": r.n_real,
                "n_synthetic": r.n_synthetic,
                "correct": r.accuracy.k,
                "accuracy": _num(r.accuracy.value),
                "accuracy_ci_low": _num(r.accuracy.ci_low),
                "accuracy_ci_high": _num(r.accuracy.ci_high),
                "p_vs_chance": _num(r.accuracy.p_value),
                "sensitivity": _num(r.sensitivity.value),
                "sensitivity_ci_low": _num(r.sensitivity.ci_low),
                "sensitivity_ci_high": _num(r.sensitivity.ci_high),
                "specificity": _num(r.specificity.value),
                "specificity_ci_low": _num(r.specificity.ci_low),
                "specificity_ci_high": _num(r.specificity.ci_high),
                "auc": _num(r.auc.auc),
                "auc_ci_low": _num(r.auc.ci_low),
                "auc_ci_high": _num(r.auc.ci_high),
                "auc_se": _num(r.auc.se),
                "auc_ci_method": r.auc.method,
                "median_response_time_s": _num(r.median_response_time_s),
                "answered": r.n,
                "trials": _num(total),
            }
        )
    return rows


def kappa_rows(results: StudyResults) -> List[Dict]:
    rows = []
    for p in results.kappa_pairs:
        if p.n_common == 0:
            note = "no common images: not computed"
        elif math.isnan(p.kappa):
            note = "undefined: both readers gave one answer to all common images"
        else:
            note = ""
        rows.append(
            {
                "reader_a": p.reader_a,
                "reader_b": p.reader_b,
                "n_common": p.n_common,
                "observed_agreement": _num(p.observed_agreement),
                "cohen_kappa": _num(p.kappa),
                "note": note,
            }
        )
    return rows


def version_rows(results: StudyResults) -> List[Dict]:
    return [
        {
            "model_version": v.model_version,
            "reader": v.reader_id,
            "n_synthetic": v.n_synthetic,
            "detected": _num(v.detected.value),
            "detected_ci_low": _num(v.detected.ci_low),
            "detected_ci_high": _num(v.detected.ci_high),
            "fooled_rate": _num(v.fooled_rate),
            "auc_vs_real": _num(v.auc.auc),
            "auc_ci_low": _num(v.auc.ci_low),
            "auc_ci_high": _num(v.auc.ci_high),
        }
        for v in results.versions
    ]


def reading_rows(results: StudyResults) -> List[Dict]:
    return [
        {
            "reader": r.reader_id,
            "trial_index": r.trial_index,
            "image_id": r.image_id,
            "patient_id": r.patient_id,
            "model_version": r.model_version or "",
            "truth": r.truth,
            "answer": r.answer,
            "confidence": r.confidence,
            "score": r.score,
            "correct": int(r.correct),
            "response_time_s": _num(r.response_time_s),
        }
        for r in results.readings
    ]


def _csv_text(rows: Sequence[Dict], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


# --------------------------------------------------------------------------- plot


def roc_png(results: StudyResults) -> bytes:
    """The ROC plot as PNG bytes (matplotlib's Agg canvas; no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1, label="chance")
    for r in results.readers:
        if r.n_real and r.n_synthetic:
            ax.plot(r.roc_fpr, r.roc_tpr, linewidth=1, alpha=0.8, marker=".", label=f"{r.reader_id} (AUC {_fmt(r.auc.auc, 2)})")
    p = results.pooled
    if p.n_real and p.n_synthetic:
        ax.plot(p.roc_fpr, p.roc_tpr, color="black", linewidth=2.2, label=f"pooled (AUC {_fmt(p.auc.auc, 2)})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - specificity (synthetic called real)")
    ax.set_ylabel("sensitivity (real called real)")
    ax.set_title("Real vs synthetic: ROC from confidence")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# --------------------------------------------------------------------------- text reports


def _reader_table(results: StudyResults) -> List[List[str]]:
    header = ["reader", "n", "accuracy [95% CI]", "p vs 0.5", "sensitivity [95% CI]", "specificity [95% CI]", "AUC [95% CI]", "median time (s)"]
    rows = [header]
    for r in list(results.readers) + [results.pooled]:
        rows.append(
            [
                r.reader_id,
                str(r.n),
                _ci(r.accuracy),
                _fmt_p(r.accuracy.p_value),
                _ci(r.sensitivity),
                _ci(r.specificity),
                f"{_fmt(r.auc.auc)} [{_fmt(r.auc.ci_low)}, {_fmt(r.auc.ci_high)}]",
                _fmt(r.median_response_time_s, 1),
            ]
        )
    return rows


def _kappa_table(results: StudyResults) -> List[List[str]]:
    rows = [["reader A", "reader B", "common images", "agreement", "Cohen's kappa"]]
    for row in kappa_rows(results):
        kappa = _fmt(row["cohen_kappa"] if row["cohen_kappa"] != "" else None)
        if row["note"]:
            kappa = f"{kappa} ({row['note']})"
        agree = row["observed_agreement"]
        rows.append([row["reader_a"], row["reader_b"], str(row["n_common"]), _fmt(agree if agree != "" else None), kappa])
    return rows


def _version_table(results: StudyResults) -> List[List[str]]:
    rows = [["model version", "reader", "synthetic readings", "caught (called synthetic) [95% CI]", "fooled", "AUC vs real [95% CI]"]]
    for v in results.versions:
        rows.append(
            [
                v.model_version,
                v.reader_id,
                str(v.n_synthetic),
                _ci(v.detected),
                _fmt(v.fooled_rate),
                f"{_fmt(v.auc.auc)} [{_fmt(v.auc.ci_low)}, {_fmt(v.auc.ci_high)}]",
            ]
        )
    return rows


def summary_lines(results: StudyResults) -> List[str]:
    p = results.pooled
    lines = [
        f"Study {results.study_id}: {len(results.readers)} reader(s), {p.n} readings "
        f"({p.n_real} of real, {p.n_synthetic} of synthetic images).",
        f"Pooled accuracy {_ci(p.accuracy)} (p = {_fmt_p(p.accuracy.p_value)} against 0.5); "
        f"AUC {_fmt(p.auc.auc)} [{_fmt(p.auc.ci_low)}, {_fmt(p.auc.ci_high)}].",
    ]
    if results.kappa_pairs:
        lines.append(f"Mean Cohen's kappa over reader pairs with common images: {_fmt(results.mean_cohen_kappa)}.")
    if results.fleiss is not None:
        f = results.fleiss
        extra = f"; {f.n_images_excluded} image(s) read by another number of readers left out" if f.n_images_excluded else ""
        lines.append(f"Fleiss' kappa: {_fmt(f.kappa)} over {f.n_images} images read by {f.n_raters} readers each{extra}.")
    else:
        lines.append("Fleiss' kappa: not computed (no image was read by two or more readers).")
    unfinished = [f"{rid} ({a}/{t})" for rid, (a, t) in results.progress.items() if a < t]
    if unfinished:
        lines.append("Unfinished sessions (answered/trials): " + ", ".join(unfinished) + ".")
    return lines


def _md_table(rows: List[List[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows[1:]]
    return "\n".join(out)


def markdown_report(results: StudyResults) -> str:
    parts = ["# Reader study results", ""]
    parts += [line + "  " for line in summary_lines(results)]
    parts += ["", "## Per reader and pooled", "", _md_table(_reader_table(results)), ""]
    parts += ["![ROC curves](roc.png)", ""]
    parts += ["## Inter-reader agreement", "", _md_table(_kappa_table(results)) if results.kappa_pairs else "One reader: no agreement statistics.", ""]
    if len(results.model_versions) > 1:
        parts += ["## Per model version", "", _md_table(_version_table(results)), ""]
    parts += ["## Methods", "", METHODS, ""]
    return "\n".join(parts)


_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:70em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:right}"
    "th{background:#eee}td:first-child,th:first-child{text-align:left}p.methods{color:#444;font-size:.9em}"
)


def _html_table(rows: List[List[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_report(results: StudyResults, png: bytes) -> str:
    img = base64.b64encode(png).decode("ascii")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Reader study results</title>",
        f"<style>{_CSS}</style></head><body><h1>Reader study results</h1>",
    ]
    parts += [f"<p>{html.escape(line)}</p>" for line in summary_lines(results)]
    parts += ["<h2>Per reader and pooled</h2>", _html_table(_reader_table(results))]
    parts += [f"<img alt='ROC curves' src='data:image/png;base64,{img}'>"]
    parts += ["<h2>Inter-reader agreement</h2>"]
    parts += [_html_table(_kappa_table(results)) if results.kappa_pairs else "<p>One reader: no agreement statistics.</p>"]
    if len(results.model_versions) > 1:
        parts += ["<h2>Per model version</h2>", _html_table(_version_table(results))]
    parts += ["<h2>Methods</h2>", f"<p class='methods'>{html.escape(METHODS)}</p></body></html>"]
    return "\n".join(parts)


# --------------------------------------------------------------------------- writing


def _write_atomic(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".cmsynth-tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_report(results: StudyResults, out_dir: str, overwrite: bool = False) -> List[str]:
    """Write every file of the module docstring into ``out_dir`` (created); returns their paths."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise OutputError(f"{out_dir} is a file; give a folder for the results.")
    parent = os.path.dirname(out_dir)
    if not os.path.isdir(parent):
        raise OutputError(f"Output folder {parent} does not exist; create it first.")
    paths = [os.path.join(out_dir, f) for f in FILES]
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not overwrite:
        raise OutputError(f"{existing[0]} already exists; choose another --out folder or pass --overwrite.")
    os.makedirs(out_dir, exist_ok=True)
    png = roc_png(results)
    readers = reader_rows(results)
    contents = {
        "readers.csv": _csv_text(readers, list(readers[0])),
        "kappa.csv": _csv_text(kappa_rows(results), ["reader_a", "reader_b", "n_common", "observed_agreement", "cohen_kappa", "note"]),
        "model_versions.csv": _csv_text(
            version_rows(results),
            ["model_version", "reader", "n_synthetic", "detected", "detected_ci_low", "detected_ci_high", "fooled_rate", "auc_vs_real", "auc_ci_low", "auc_ci_high"],
        ),
        "readings.csv": _csv_text(
            reading_rows(results),
            ["reader", "trial_index", "image_id", "patient_id", "model_version", "truth", "answer", "confidence", "score", "correct", "response_time_s"],
        ),
        "report.md": markdown_report(results),
        "report.html": html_report(results, png),
    }
    for name, path in zip(FILES, paths):
        data = png if name == "roc.png" else contents[name].encode("utf-8")
        _write_atomic(path, data)
    return paths


__all__ = ["FILES", "summary_lines", "write_report", "markdown_report", "html_report", "roc_png", "reader_rows", "kappa_rows", "version_rows", "reading_rows"]
