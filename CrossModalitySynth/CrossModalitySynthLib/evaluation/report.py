"""The evaluation report: one self-contained HTML file (figures embedded as base64 PNG).

It holds the summary (mode, N, settings), the warnings, a table for every metric family with
units, the figures, the per-case table and the definitions of every number. It needs no
network and no other file. A small inline script counts, after the page has loaded, the images
that decoded (``naturalWidth > 0``) and writes the count to ``<body data-loaded="N">`` next to
``data-expected-images``, and the images' page boxes (``x,y,w,h;...`` in CSS pixels) to
``data-image-boxes``, so a headless browser can check that the page rendered completely.
"""

import base64
import datetime
import html
import math
import os
from typing import List, Optional, Sequence, Tuple

from .. import __version__
from .definitions import DEFINITIONS
from .runner import PAIRED_KEYS, SEG_KEYS, EvaluationResult

_CSS = """
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #1b1b1b; margin: 0;
       background: #f4f5f7; font-size: 15px; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 28px 40px; background: #fff; }
header { background: #17324d; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: #cfd8e3; }
h2 { border-bottom: 2px solid #17324d; padding-bottom: 4px; margin-top: 34px; font-size: 21px; }
h3 { margin-bottom: 6px; font-size: 17px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
th, td { border: 1px solid #c9ced6; padding: 5px 9px; text-align: right; vertical-align: top; }
th { background: #e8edf3; text-align: center; }
td.l, th.l { text-align: left; }
tr:nth-child(even) td { background: #f8f9fb; }
.note { color: #555; font-size: 13px; }
.warn { background: #fff6db; border: 1px solid #e3c25d; border-left: 6px solid #d9a400; padding: 8px 14px;
        margin: 10px 0; }
.warn li { margin: 3px 0; }
.ok { background: #e8f5e9; border: 1px solid #9ccc9f; padding: 8px 14px; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; height: auto; border: 1px solid #d6d9de; display: block; }
figcaption { color: #444; font-size: 13px; margin-top: 5px; }
.better { color: #555; font-size: 12px; }
code { background: #eef1f4; padding: 0 3px; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0, boxes = [];
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0 && imgs[i].src.indexOf("data:image/png;base64,") === 0) ok++;
    var r = imgs[i].getBoundingClientRect();
    boxes.push([r.left + window.scrollX, r.top + window.scrollY, r.width, r.height].map(Math.round).join(","));
  }
  document.body.setAttribute("data-images", String(imgs.length));
  document.body.setAttribute("data-loaded", String(ok));
  document.body.setAttribute("data-image-boxes", boxes.join(";"));
});
"""


def _e(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def fmt(value, digits: int = 4) -> str:
    """A number for a table: ``n/a`` for None/NaN, the infinity sign for inf, else ``digits``
    significant digits."""
    if value is None:
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return _e(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "&infin;" if v > 0 else "&minus;&infin;"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return "{:.{d}e}".format(v, d=max(digits - 1, 1))
    return "{:.{d}g}".format(v, d=digits)


def fmt_pm(mean, sd) -> str:
    """``mean +- sd``; an SD below 1e-9 of the mean (identical subsets) is shown as 0."""
    if sd is not None and mean is not None and abs(float(sd)) < 1e-9 * max(1.0, abs(float(mean))):
        sd = 0.0
    return "{} &plusmn; {}".format(fmt(mean), fmt(sd))


def _unit(key: str) -> str:
    u = DEFINITIONS.get(key, {}).get("unit", "")
    return "unitless" if u == "1" else u


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left_cols: int = 1) -> str:
    """Cells are HTML already (escape text with _e)."""
    out = ["<table><thead><tr>"]
    for i, h in enumerate(header):
        out.append('<th class="l">{}</th>'.format(h) if i < left_cols else "<th>{}</th>".format(h))
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for i, c in enumerate(r):
            out.append('<td class="l">{}</td>'.format(c) if i < left_cols else "<td>{}</td>".format(c))
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _summary_cells(s: dict) -> List[str]:
    mean_sd = fmt_pm(s["mean"], s["std"]) if s.get("std") is not None else fmt(s["mean"])
    ci = "n/a" if not s.get("ci95") else "[{}, {}]".format(fmt(s["ci95"][0]), fmt(s["ci95"][1]))
    rng = "n/a" if s.get("min") is None else "{} &ndash; {}".format(fmt(s["min"]), fmt(s["max"]))
    n = str(s["n"]) + (" ({} non-finite)".format(s["n_non_finite"]) if s.get("n_non_finite") else "")
    return [mean_sd, fmt(s["median"]), rng, ci, n]


def _metric_label(key: str) -> str:
    d = DEFINITIONS[key]
    return '{} <span class="better">({} is better)</span>'.format(_e(d["name"]), _e(d["better"])) if d["better"] \
        else _e(d["name"])


def _section_summary(r: EvaluationResult) -> str:
    s = r.settings
    planes = r.pooled["distribution"]["planes"]
    sources = sorted({c.get("mask_source", "") for c in r.cases})
    rows = [
        ["mode", "paired (real and synthetic volume of a case on one grid)" if r.paired
         else "unpaired (two independent sets of volumes)"],
        ["cases (N)", _e(r.n["cases"]) if r.paired else "n/a (unpaired)"],
        ["real / synthetic volumes", "{} / {}".format(r.n["real_volumes"], r.n["synthetic_volumes"])],
        ["slices per plane (real / synthetic)",
         "; ".join("{}: {} / {}".format(_e(p), v["n_real"], v["n_synth"]) for p, v in planes.items())],
        ["voxels in the masks (real / synthetic)", "{} / {}".format(r.n["real_voxels_in_masks"],
                                                                     r.n["synthetic_voxels_in_masks"])],
        ["masks", _e(", ".join("given" if x == "given" else "body mask of the CT (> -500 HU)" for x in sources))],
        ["FID/KID features", "{} ({}-dimensional)".format(_e(r.pooled["distribution"]["extractor"]),
                                                          r.pooled["distribution"]["dim"])],
        ["histogram range, bin width", "[{:g}, {:g}] HU, {:g} HU".format(s.hu_range[0], s.hu_range[1], s.bin_width)],
        ["spectral band", "{:g} &ndash; {:g} cycles/pixel".format(*s.spectral_band)],
    ]
    return "<h2>Summary</h2>" + _table(["item", "value"], rows, left_cols=2)


def _section_warnings(r: EvaluationResult) -> str:
    if not r.warnings:
        return '<h2>Warnings</h2><p class="ok">No warnings.</p>'
    items = "".join("<li>{}</li>".format(_e(w)) for w in r.warnings)
    return '<h2>Warnings ({})</h2><div class="warn"><ul>{}</ul></div>'.format(len(r.warnings), items)


def _section_paired(r: EvaluationResult) -> str:
    if not r.paired:
        return ""
    rows = []
    for k in PAIRED_KEYS:
        rows.append([_metric_label(k), _e(_unit(k))] + _summary_cells(r.pooled["paired"][k]))
    return ("<h2>Paired metrics (SynthRAD definitions)</h2>"
            '<p class="note">One value per case inside its evaluation mask; statistics over the {} case(s). '
            "The 95% CI is a bootstrap interval of the mean, resampling cases.</p>".format(r.n["cases"])
            + _table(["metric", "unit", "mean &plusmn; SD", "median", "min &ndash; max", "95% CI of mean", "N"], rows,
                     left_cols=2))


def _section_distribution(r: EvaluationResult) -> str:
    d = r.pooled["distribution"]
    rows = []
    for plane, v in d["planes"].items():
        rows.append([_e(plane), str(v["n_real"]), str(v["n_synth"]), fmt(v["fid"]),
                     fmt_pm(v["kid_mean"], v["kid_std"]),
                     "{} ({})".format("yes" if v["biased_small_n"] else "no", _e(v["fid_method"]))])
    if len(d["planes"]) > 1:
        rows.append(["<b>mean (2.5D)</b>", "", "", "<b>{}</b>".format(fmt(d["fid"])), "<b>{}</b>".format(fmt(d["kid"])), ""])
    return ("<h2>Distribution metrics (unpaired, over slices)</h2>"
            '<p class="note">Per-slice features: <code>{}</code> ({}-d). FID and KID in feature units squared '
            "(lower is better); they depend on N and on the feature extractor.</p>".format(_e(d["extractor"]), d["dim"])
            + _table(["plane", "N real slices", "N synthetic slices", "FID", "KID (mean &plusmn; SD)", "N &le; dim (FID method)"], rows))


def _section_histogram(r: EvaluationResult) -> str:
    h = r.pooled["histogram"]
    rows = [[_metric_label(k), _e(_unit(k)), fmt(h[k])] for k in
            ("kl_real_synth", "kl_synth_real", "js_bits", "wasserstein", "intersection")]
    return ("<h2>HU histogram metrics (pooled)</h2>"
            '<p class="note">Histograms of CT numbers inside the masks on [{:g}, {:g}] HU with {:g} HU bins, pooled over '
            "all volumes of a set ({} real and {} synthetic voxels); KL smoothing eps = {:g} per bin.</p>".format(
                h["hu_range"][0], h["hu_range"][1], h["bin_width"], h["n_real_voxels"], h["n_synth_voxels"], h["eps"])
            + _table(["metric", "unit", "value"], rows, left_cols=2))


def _section_spectral(r: EvaluationResult) -> str:
    s = r.pooled["spectral"]
    rows = [[_metric_label(k), _e(_unit(k)), fmt(s[k])] for k in ("spectral_distance", "slope_real", "slope_synth")]
    return ("<h2>Spectral metrics</h2>"
            '<p class="note">Mean radial power spectra of {} real and {} synthetic axial slices (raw HU), compared over '
            "{:g}&ndash;{:g} cycles/pixel.</p>".format(s["n_real_slices"], s["n_synth_slices"], s["band"][0], s["band"][1])
            + _table(["metric", "unit", "value"], rows, left_cols=2))


def _section_segmentation(r: EvaluationResult) -> str:
    seg = r.pooled.get("segmentation")
    if not seg:
        return ""
    rows = []
    for lab, entry in seg.items():
        for k in SEG_KEYS:
            rows.append(["{} ({})".format(_e(lab), _e(entry["name"])), _metric_label(k), _e(_unit(k))]
                        + _summary_cells(entry[k]))
    return ("<h2>Segmentation (predicted vs reference label maps)</h2>"
            '<p class="note">Per case and label; distances in mm with the voxel spacing. One empty mask gives an '
            "infinite distance, counted as non-finite and left out of the mean.</p>"
            + _table(["label", "metric", "unit", "mean &plusmn; SD", "median", "min &ndash; max", "95% CI of mean", "N"],
                     rows, left_cols=3))


def _section_cases(r: EvaluationResult) -> str:
    if r.paired:
        labels = r.segmentation_labels
        header = ["case", "mask", "mask voxels", "MAE (HU)", "PSNR (dB)", "SSIM", "MS-SSIM", "JS (bits)", "W1 (HU)"]
        for lab in labels:
            header += ["Dice {}".format(lab), "HD95 {} (mm)".format(lab)]
        rows = []
        for c in r.cases:
            row = ['<span title="{}">{}</span>'.format(_e(c["real"] + " | " + c["synthetic"]), _e(c["case_id"])),
                   _e(c["mask_source"]), str(c["n_mask_voxels"]), fmt(c["mae"]), fmt(c["psnr"]), fmt(c["ssim"]),
                   fmt(c["ms_ssim"]), fmt(c["histogram"]["js_bits"]), fmt(c["histogram"]["wasserstein"])]
            for lab in labels:
                s = c.get("segmentation", {}).get(str(lab))
                row += [fmt(None if s is None else s["dice"]), fmt(None if s is None else s["hd95"])]
            rows.append(row)
        return "<h2>Per case</h2>" + _table(header, rows, left_cols=2)
    header = ["set", "volume", "mask", "mask voxels", "mean (HU)", "SD (HU)", "median (HU)"]
    rows = [[_e(c["set"]), '<span title="{}">{}</span>'.format(_e(c["path"]), _e(c["case_id"])), _e(c["mask_source"]),
             str(c["n_mask_voxels"]), fmt(c["mean_hu"]), fmt(c["std_hu"]), fmt(c["median_hu"])] for c in r.cases]
    return "<h2>Per volume</h2>" + _table(header, rows, left_cols=3)


def _section_figures(figures: Sequence[Tuple[str, str, str]], plot_dir: str) -> Tuple[str, int]:
    out = ["<h2>Figures</h2>"]
    for title, fname, caption in figures:
        with open(os.path.join(plot_dir, fname), "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        out.append('<figure><h3>{}</h3><img alt="{}" src="data:image/png;base64,{}">'
                   "<figcaption>{} <span class=\"note\">(plots/{})</span></figcaption></figure>".format(
                       _e(title), _e(title), data, _e(caption), _e(fname)))
    return "".join(out), len(figures)


def _section_definitions() -> str:
    rows = [[_e(d["name"]), "<code>{}</code>".format(_e(k)), _e(d["unit"] if d["unit"] != "1" else "unitless"),
             _e(d["better"]) if d["better"] else "&ndash;", _e(d["definition"])] for k, d in DEFINITIONS.items()]
    return "<h2>Definitions</h2>" + _table(["metric", "key in metrics.json", "unit", "better", "definition"], rows,
                                           left_cols=5)


def render_report(result: EvaluationResult, figures: Sequence[Tuple[str, str, str]], plot_dir: str,
                  title: str = "Synthetic CT evaluation", created: Optional[str] = None) -> str:
    """The report as one HTML string; figures are read from ``plot_dir`` and embedded."""
    created = created or datetime.datetime.now().replace(microsecond=0).isoformat(sep=" ")
    fig_html, n_images = _section_figures(figures, plot_dir)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>{}</title><style>{}</style></head>".format(_e(title), _CSS),
        '<body data-expected-images="{}" data-loaded="pending">'.format(n_images),
        "<header><h1>{}</h1><p>{} mode &middot; {} &middot; cmsynth evaluate {}</p></header><main>".format(
            _e(title), "Paired" if result.paired else "Unpaired", _e(created), _e(__version__)),
        _section_summary(result),
        _section_warnings(result),
        _section_paired(result),
        _section_segmentation(result),
        _section_distribution(result),
        _section_histogram(result),
        _section_spectral(result),
        fig_html,
        _section_cases(result),
        _section_definitions(),
        '<p class="note">All numbers are also in metrics.json (pooled and per case) and per_case.csv next to this '
        "file.</p>",
        "</main><script>{}</script></body></html>".format(_SCRIPT),
    ]
    return "\n".join(p for p in parts if p)
