"""Overlay pictures for review: MRI | synthetic CT with the liver outline, in three planes.

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


def save_overlays(
    mri: sitk.Image,
    sct: sitk.Image,
    liver: Optional[sitk.Image],
    out_dir: str,
    prefix: str = "overlay",
    second_title: str = "synthetic CT",
    second_is_ct: bool = True,
) -> Dict[str, str]:
    """Write ``<prefix>_axial.png``, ``_coronal.png``, ``_sagittal.png`` into ``out_dir``.

    Each picture shows the input (left) and the synthetic image (right) at the liver's centre
    (the volume centre without a liver), with the liver outline on both. Returns plane -> path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m_arr, spacing = _canonical(mri)
    s_arr, _ = _canonical(sct)
    l_arr = _canonical(liver)[0] > 0 if liver is not None else None
    cz, cy, cx = _centre(l_arr, m_arr.shape)
    lo, hi = np.percentile(m_arr, [1, 99.5])
    level, width = CT_WINDOW
    paths = {}
    for plane, idx in (("axial", cz), ("coronal", cy), ("sagittal", cx)):
        fig, axes = plt.subplots(1, 2, figsize=(10, 5.2), dpi=100)
        for ax, arr, title, is_ct in ((axes[0], m_arr, "input MRI", False),
                                      (axes[1], s_arr, second_title, second_is_ct)):
            vmin, vmax = (level - width / 2, level + width / 2) if is_ct else (lo, hi)
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
        fig.savefig(path)
        plt.close(fig)
        paths[plane] = path
    return paths
