"""Overlay pictures for review: input | synthetic image (MRI | synthetic CT, or CT | synthetic MRI)
with the liver outline, in three planes.

Volumes are shown in the LPS-canonical orientation (radiological convention): axial with the
patient's left on the image's right and anterior up; coronal and sagittal with superior up.
Pixel aspect follows the voxel spacing.
"""

import os
from typing import Dict, Optional

import numpy as np
import SimpleITK as sitk

from ..preprocess.orientation import reorient

CT_WINDOW = (40.0, 400.0)  # level, width: abdominal soft tissue


def _canonical(image: sitk.Image) -> np.ndarray:
    oriented, _ = reorient(image, "LPS")
    return sitk.GetArrayFromImage(oriented), oriented.GetSpacing()


def _slice(arr: np.ndarray, plane: str, index: int) -> np.ndarray:
    if plane == "axial":
        return arr[index]
    if plane == "coronal":
        return arr[:, index, :][::-1]  # superior up
    return arr[:, :, index][::-1]


def _aspect(spacing, plane: str) -> float:
    sx, sy, sz = spacing
    if plane == "axial":
        return sy / sx
    if plane == "coronal":
        return sz / sx
    return sz / sy


def _centre(mask: Optional[np.ndarray], shape) -> tuple:
    if mask is not None and mask.any():
        return tuple(int(round(c)) for c in np.argwhere(mask).mean(axis=0))
    return tuple(s // 2 for s in shape)


def _name(modality: str) -> str:
    return "CT" if str(modality).upper() == "CT" else "MRI"


def panel_window(arr: np.ndarray, modality: str) -> tuple:
    """(vmin, vmax) of one panel, from its own modality: the abdominal CT window (level 40, width
    400 HU) for a CT, the 1st to 99.5th percentile of the volume itself for an MRI (arbitrary
    units: dark air, the body's range without its brightest voxels)."""
    if _name(modality) == "CT":
        level, width = CT_WINDOW
        return level - width / 2, level + width / 2
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [1, 99.5]))
    return lo, (hi if hi > lo else lo + 1.0)


def _window_text(modality: str, window: tuple) -> str:
    if _name(modality) == "CT":
        return "window level {:g} width {:g} HU".format(*CT_WINDOW)
    return "window {:.4g} to {:.4g} (1st to 99.5th percentile)".format(*window)


def save_overlays(
    image: sitk.Image,
    synthetic: sitk.Image,
    liver: Optional[sitk.Image],
    out_dir: str,
    prefix: str = "overlay",
    input_modality: str = "MR",
    output_modality: str = "CT",
) -> Dict[str, str]:
    """Write ``<prefix>_axial.png``, ``_coronal.png``, ``_sagittal.png`` into ``out_dir``.

    Each picture shows the input ``image`` (left, titled "input MRI" or "input CT" by
    ``input_modality``) and the ``synthetic`` image (right, "synthetic CT" or "synthetic MRI" by
    ``output_modality``) at the liver's centre (the volume centre without a liver), with the liver
    outline on both. Each panel has the window of its own modality (:func:`panel_window`). The
    PNG's ``Title`` text says what the panels are and its ``Description`` gives each panel's
    title and window. Returns plane -> path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m_arr, spacing = _canonical(image)
    s_arr, _ = _canonical(synthetic)
    l_arr = _canonical(liver)[0] > 0 if liver is not None else None
    cz, cy, cx = _centre(l_arr, m_arr.shape)
    panels = []
    for arr, role, modality in ((m_arr, "input", input_modality), (s_arr, "synthetic", output_modality)):
        window = panel_window(arr, modality)
        panels.append((arr, "{} {}".format(role, _name(modality)), window, _window_text(modality, window)))
    paths = {}
    for plane, idx in (("axial", cz), ("coronal", cy), ("sagittal", cx)):
        fig, axes = plt.subplots(1, 2, figsize=(10, 5.2), dpi=100)
        for ax, (arr, title, (vmin, vmax), _) in zip(axes, panels):
            ax.imshow(_slice(arr, plane, idx), cmap="gray", vmin=vmin, vmax=vmax,
                      aspect=_aspect(spacing, plane), interpolation="bilinear")
            outline = _slice(l_arr, plane, idx) if l_arr is not None else None
            if outline is not None and min(outline.shape) >= 2 and outline.any():  # contour needs 2x2
                ax.contour(_slice(l_arr, plane, idx).astype(float), levels=[0.5], colors=["#ff8c2a"], linewidths=1.2)
            ax.set_title(f"{title} ({plane})", fontsize=11)
            ax.axis("off")
        if l_arr is not None:
            fig.text(0.5, 0.02, "orange: liver segmentation", ha="center", fontsize=9, color="#aa5500")
        fig.tight_layout()
        path = os.path.join(out_dir, f"{prefix}_{plane}.png")
        description = "; ".join("{}: {} ({})".format(side, title, text)
                                for side, (_, title, _, text) in zip(("left", "right"), panels))
        fig.savefig(path, metadata={"Title": "{} | {} ({})".format(panels[0][1], panels[1][1], plane),
                                    "Description": description})
        plt.close(fig)
        paths[plane] = path
    return paths
