"""The evaluation report's figures, as PNG files (matplotlib, Agg canvas, no pyplot state).

- ``hu_histograms.png``: pooled HU histograms of real and synthetic volumes inside the masks,
  overlaid, on a linear and a logarithmic axis;
- ``spectra.png``: mean radial log-power spectra of the axial slices and their difference,
  with the compared band shaded;
- ``example_<case>.png``: one axial slice real | synthetic | synthetic - real (paired) or
  real | synthetic (unpaired), each with a colour bar in HU;
- ``per_case.png``: MAE, PSNR, SSIM, MS-SSIM per case (paired mode);
- ``segmentation.png``: Dice and HD95 per case and label (when label maps were given).

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas directly, so no GUI
backend is touched (safe inside Slicer and on headless machines).
"""

import os
import re
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .definitions import DEFINITIONS

REAL_COLOUR = "#1f77b4"
SYNTH_COLOUR = "#d62728"
DISPLAY_WINDOW = (-160.0, 240.0)  #: abdomen soft-tissue window (W 400, L 40), HU
DIFF_RANGE = 200.0  #: difference colour scale +- HU
DPI = 100


def _figure(width: float, height: float):
    """A figure on the Agg canvas; layouts are set by hand with ``subplots_adjust`` (a layout engine
    or ``bbox_inches="tight"`` would double the drawing time)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str) -> str:
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


def safe_name(text: str) -> str:
    """A file-name-safe version of a case id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "case"


def plot_histograms(h_real, h_synth, path: str) -> str:
    """Overlaid pooled HU histograms (fraction of mask voxels per bin), linear and log axes."""
    fig = _figure(11, 4.0)
    centres = h_real.centres
    width = float(h_real.edges[1] - h_real.edges[0])
    p = h_real.probabilities
    q = h_synth.probabilities
    nz = np.nonzero((p > 0) | (q > 0))[0]
    lo = h_real.edges[max(int(nz[0]) - 2, 0)] if nz.size else h_real.edges[0]
    hi = h_real.edges[min(int(nz[-1]) + 3, len(h_real.edges) - 1)] if nz.size else h_real.edges[-1]
    for i, log in enumerate((False, True)):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.step(centres, p * 100, where="mid", color=REAL_COLOUR, lw=1.4, label="real")
        ax.step(centres, q * 100, where="mid", color=SYNTH_COLOUR, lw=1.4, label="synthetic", alpha=0.9)
        ax.fill_between(centres, p * 100, step="mid", color=REAL_COLOUR, alpha=0.15)
        ax.set_xlim(lo, hi)
        ax.set_xlabel("CT number (HU)")
        ax.set_ylabel("voxels per {:g} HU bin (% of mask)".format(width))
        if log:
            ax.set_yscale("log")
            ax.set_title("logarithmic axis (tails)")
        else:
            ax.set_title("linear axis")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right")
    fig.suptitle("HU histograms inside the masks, pooled over all volumes", fontsize=13)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.84, wspace=0.22)
    return _save(fig, path)


def plot_spectra(spec, path: str) -> str:
    """Mean radial log10 power of real and synthetic axial slices, and synthetic - real."""
    fig = _figure(11, 4.0)
    f = spec.freq
    band = spec.band
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(f, spec.real, color=REAL_COLOUR, lw=1.5, label="real (slope {:.2f})".format(spec.slope_real))
    ax.plot(f, spec.synth, color=SYNTH_COLOUR, lw=1.5, label="synthetic (slope {:.2f})".format(spec.slope_synth))
    ax.axvspan(band[0], band[1], color="grey", alpha=0.15, label="compared band")
    ax.set_xlabel("spatial frequency (cycles / pixel)")
    ax.set_ylabel("mean log10 power (HU^2)")
    ax.set_title("radial power spectra")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.plot(f, spec.synth - spec.real, color="black", lw=1.5)
    ax2.axhline(0.0, color="grey", lw=0.8)
    ax2.axvspan(band[0], band[1], color="grey", alpha=0.15)
    ax2.set_xlabel("spatial frequency (cycles / pixel)")
    ax2.set_ylabel("synthetic - real (decades of power)")
    ax2.set_title("difference; band distance {:.3f} decades".format(spec.distance))
    ax2.grid(alpha=0.3)
    fig.suptitle("Radial power spectra of the axial slices (raw HU)", fontsize=13)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.84, wspace=0.25)
    return _save(fig, path)


def _image_panel(fig, ax, img, aspect, title, cmap, vmin, vmax, unit, mask=None, mask_colour="yellow"):
    im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, aspect=aspect, interpolation="nearest")
    if mask is not None and mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=mask_colour, linewidths=0.7)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.ax.set_title(unit, fontsize=9)  # above the bar: takes no room between the panels
    return im


def plot_example(example, path: str, window: Tuple[float, float] = DISPLAY_WINDOW,
                 diff_range: float = DIFF_RANGE) -> str:
    """One axial slice: real | synthetic | synthetic - real (or real | synthetic), HU colour bars."""
    paired = example.mask is not None and example.real is not None and example.synthetic is not None \
        and example.real.shape == example.synthetic.shape
    n = 3 if paired else 2
    fig = _figure(3.75 * n, 4.0)  # about the report's width at 100 dpi: shown unscaled
    wl = "window [{:g}, {:g}] HU".format(*window)
    ax = fig.add_subplot(1, n, 1)
    _image_panel(fig, ax, example.real, example.aspect, "real CT", "gray", window[0], window[1],
                 "HU", example.mask)
    ax = fig.add_subplot(1, n, 2)
    s_aspect = example.synthetic_aspect if example.synthetic_aspect is not None else example.aspect
    _image_panel(fig, ax, example.synthetic, s_aspect, "synthetic CT", "gray", window[0], window[1],
                 "HU", example.mask)
    if paired:
        ax = fig.add_subplot(1, 3, 3)
        diff = example.synthetic - example.real
        inside = diff[example.mask] if example.mask.any() else diff.ravel()
        _image_panel(fig, ax, diff, example.aspect,
                     "synthetic - real (slice MAE {:.1f} HU)".format(float(np.abs(inside).mean())),
                     "RdBu_r", -diff_range, diff_range, "\u0394 HU", example.mask, mask_colour="#444444")
        title = "Case {}{}, axial slice {} (largest mask area); {}; line = evaluation mask".format(
            example.case_id, " ({})".format(example.role) if example.role else "", example.slice_index, wl)
    else:
        title = "Unpaired examples (different volumes): real {} | synthetic {}\n{}".format(
            *((example.case_id.split(" | ") + ["", ""])[:2] + [wl]))
    fig.suptitle(title, fontsize=12)
    fig.subplots_adjust(left=0.01, right=0.95 if paired else 0.92, bottom=0.02, top=0.86 if paired else 0.8,
                        wspace=0.32)
    return _save(fig, path)


def _case_ticks(ax, names: Sequence[str], max_labels: int = 30) -> None:
    """Case names under the bars; every k-th only when there are many."""
    step = max(1, int(np.ceil(len(names) / float(max_labels))))
    idx = np.arange(0, len(names), step)
    ax.set_xticks(idx)
    ax.set_xticklabels([names[i] for i in idx], rotation=45 if len(names) > 4 else 0,
                       ha="right" if len(names) > 4 else "center", fontsize=8)


def _bars(ax, names: Sequence[str], values: Sequence[Optional[float]], colour: str, ylabel: str, title: str):
    x = np.arange(len(names))
    v = np.array([np.nan if (val is None or not np.isfinite(val)) else val for val in values], dtype=float)
    ax.bar(x, np.nan_to_num(v, nan=0.0), color=colour, alpha=0.85)
    for i, val in enumerate(v):
        if not np.isfinite(val):
            ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=8)
    if np.isfinite(v).any():
        m = float(np.nanmean(v))
        ax.axhline(m, color="black", ls="--", lw=1, label="mean {:.3g}".format(m))
        ax.legend(loc="lower right", fontsize=8)
    _case_ticks(ax, names)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)


def plot_per_case(rows: Sequence[dict], path: str) -> str:
    """MAE, PSNR, SSIM and MS-SSIM of each case as bars, the mean as a dashed line."""
    names = [r["case_id"] for r in rows]
    fig = _figure(min(20.0, max(10.0, 0.3 * len(names) + 4)), 7.0)
    for i, (key, colour) in enumerate((("mae", "#ff7f0e"), ("psnr", "#2ca02c"), ("ssim", "#9467bd"),
                                       ("ms_ssim", "#8c564b"))):
        d = DEFINITIONS[key]
        ax = fig.add_subplot(2, 2, i + 1)
        unit = d["unit"] if d["unit"] != "1" else "unitless"
        _bars(ax, names, [r[key] for r in rows], colour, "{} ({})".format(d["name"], unit),
              "{} per case ({} is better)".format(d["name"], d["better"]))
    fig.suptitle("Paired metrics per case, inside the evaluation masks", fontsize=13)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.1, top=0.9, wspace=0.25, hspace=0.4)
    return _save(fig, path)


def plot_segmentation(rows: Sequence[dict], labels: Sequence[int], path: str) -> str:
    """Dice and HD95 per case for each label (grouped bars)."""
    rows = [r for r in rows if "segmentation" in r]
    names = [r["case_id"] for r in rows]
    fig = _figure(min(20.0, max(10.0, 0.3 * len(names) * max(1, len(labels)) + 4)), 4.2)
    x = np.arange(len(names))
    w = 0.8 / max(1, len(labels))
    for j, (key, ylabel) in enumerate((("dice", "Dice (unitless)"), ("hd95", "HD95 (mm)"))):
        ax = fig.add_subplot(1, 2, j + 1)
        for k, lab in enumerate(labels):
            vals = []
            for r in rows:
                s = r["segmentation"].get(str(lab))
                v = None if s is None else s[key]
                vals.append(np.nan if v is None or not np.isfinite(v) else v)
            name = rows[0]["segmentation"].get(str(lab), {}).get("name") if rows else None
            ax.bar(x + (k - (len(labels) - 1) / 2.0) * w, np.nan_to_num(vals, nan=0.0), width=w,
                   label="{} ({})".format(lab, name or "label"))
        _case_ticks(ax, names)
        ax.set_ylabel(ylabel)
        ax.set_title("{} per case{}".format(ylabel.split(" ")[0], " (infinite HD95 drawn as 0)" if key == "hd95" else ""),
                     fontsize=11)
        ax.grid(axis="y", alpha=0.3)
        if len(labels) <= 8:
            ax.legend(fontsize=7, loc="lower right" if key == "dice" else "upper right")
    fig.suptitle("Segmentation of the predicted vs the reference label maps", fontsize=13)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.84, wspace=0.22)
    return _save(fig, path)


def make_plots(result, folder: str) -> List[Tuple[str, str, str]]:
    """Write every figure of ``result`` into ``folder``; returns (title, file name, caption) each."""
    os.makedirs(folder, exist_ok=True)
    out = []
    out.append(("HU histograms", os.path.basename(plot_histograms(*result.histograms, os.path.join(folder, "hu_histograms.png"))),
                "Pooled histograms of CT numbers inside the evaluation masks; the log axis shows the tails "
                "(air, bone). Bin width {:g} HU.".format(result.settings.bin_width)))
    out.append(("Radial power spectra", os.path.basename(plot_spectra(result.spectra, os.path.join(folder, "spectra.png"))),
                "Mean azimuthally averaged log10 power of the axial slices; the shaded band "
                "({:g}-{:g} cycles/pixel) is where the spectral distance and slopes are measured.".format(
                    *result.spectra.band)))
    for ex in result.examples:
        fname = "example_{}.png".format(safe_name(ex.case_id))
        plot_example(ex, os.path.join(folder, fname))
        out.append(("Example slices: {}{}".format(ex.case_id, " ({})".format(ex.role) if ex.role else ""), fname,
                    "Soft-tissue window [{:g}, {:g}] HU; difference scale +-{:g} HU (red: synthetic brighter).".format(
                        DISPLAY_WINDOW[0], DISPLAY_WINDOW[1], DIFF_RANGE)
                    if result.paired else
                    "Soft-tissue window [{:g}, {:g}] HU. Unpaired mode: the two slices come from different "
                    "volumes.".format(*DISPLAY_WINDOW)))
    if result.paired:
        out.append(("Paired metrics per case", os.path.basename(plot_per_case(result.cases, os.path.join(folder, "per_case.png"))),
                    "Each bar is one case; the dashed line is the mean over cases."))
        if result.segmentation_labels:
            out.append(("Segmentation per case", os.path.basename(
                plot_segmentation(result.cases, result.segmentation_labels, os.path.join(folder, "segmentation.png"))),
                "Dice and HD95 of the predicted against the reference label maps, per case and label."))
    return out
