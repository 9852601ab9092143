"""The Evaluate section: paired metrics of a synthetic volume against a reference, in the scene.

:func:`evaluate_nodes` reads both volume nodes (and an optional mask node), computes the
SynthRAD-style paired metrics of :func:`CrossModalitySynthLib.metrics.paired_metrics` (MAE,
PSNR, SSIM, MS-SSIM when the volume is large enough), writes the difference map
``synthetic - reference`` (HU) into a volume node on the synthetic volume's grid and the numbers
into a table node (columns: metric, value, unit, definition). A reference on another grid is
resampled (linear, -1024 HU outside) onto the synthetic grid first, and the table says so.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from ..errors import InputError

DIFFERENCE_WINDOW = (400.0, 0.0)  # width, level in HU: +-200 HU around zero


@dataclass
class EvaluationOutput:
    rows: List[Tuple[str, str, str, str]]  #: (metric, value, unit, definition)
    difference_node: object
    table_node: object
    metrics: object  #: the PairedMetrics
    note: str = ""


def _mask_from_node(mask_node, grid_image):
    """A 0/1 UInt8 mask on ``grid_image``'s grid from a volume or segmentation node."""
    import SimpleITK as sitk

    from ..geometry import same_grid
    from .mrml import node_to_volume, segmentation_to_labels
    from ..preprocess import resample_to_grid

    if mask_node.IsA("vtkMRMLSegmentationNode"):
        labels = segmentation_to_labels(mask_node, grid_image)
    else:
        labels = node_to_volume(mask_node)
        if not same_grid(labels, grid_image, tol=1e-4):
            labels = resample_to_grid(labels, grid_image, "nearest", 0.0)
    mask = sitk.Cast(labels > 0, sitk.sitkUInt8)
    if not sitk.GetArrayViewFromImage(mask).any():
        raise InputError(f"The mask '{mask_node.GetName()}' is empty on the synthetic volume's grid; pick another mask.")
    return mask


def _fmt(value: Optional[float], digits: int) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def fill_table(table_node, rows) -> None:
    """Replace the table node's content with (metric, value, unit, definition) rows."""
    import vtk

    table = vtk.vtkTable()
    for name in ("metric", "value", "unit", "definition"):
        col = vtk.vtkStringArray()
        col.SetName(name)
        table.AddColumn(col)
    table.SetNumberOfRows(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.SetValue(r, c, vtk.vtkVariant(str(value)))
    table_node.SetAndObserveTable(table)
    table_node.SetUseColumnTitleAsColumnHeader(True)


def evaluate_nodes(synthetic_node, reference_node, mask_node=None, difference_node=None, table_node=None,
                   scene=None, with_ms_ssim: bool = True) -> EvaluationOutput:
    """Compute the paired metrics and fill (or create) the difference and table nodes."""
    import SimpleITK as sitk

    from ..geometry import same_grid
    from ..metrics import paired_metrics
    from .mrml import node_to_volume, place_in_study, volume_to_node
    from ..preprocess import resample_to_grid

    if synthetic_node is None or reference_node is None:
        raise InputError("Pick a synthetic volume and a reference volume to compare.")
    if synthetic_node.GetID() == reference_node.GetID():
        raise InputError("The synthetic and the reference volume are the same node; pick the real CT as reference.")
    scene = scene or synthetic_node.GetScene()
    synthetic = sitk.Cast(node_to_volume(synthetic_node), sitk.sitkFloat32)
    reference = sitk.Cast(node_to_volume(reference_node), sitk.sitkFloat32)
    note = ""
    if not same_grid(reference, synthetic, tol=1e-4):
        reference = resample_to_grid(reference, synthetic, "linear", -1024.0)
        note = "reference resampled (linear) onto the synthetic volume's grid"
    mask = _mask_from_node(mask_node, synthetic) if mask_node is not None else None
    large_enough = min(synthetic.GetSize()) >= 97  # MS-SSIM needs 5 scales
    m = paired_metrics(reference, synthetic, mask, with_ms_ssim=with_ms_ssim and large_enough)

    difference = sitk.Subtract(synthetic, reference)
    created_diff = difference_node is None
    name = f"{synthetic_node.GetName()} - {reference_node.GetName()}"
    difference_node = volume_to_node(difference, name=name if created_diff else None, scene=scene, node=difference_node)
    display = difference_node.GetDisplayNode()
    display.AutoWindowLevelOff()
    display.SetWindowLevel(*DIFFERENCE_WINDOW)
    if scene.GetNodeByID("vtkMRMLColorTableNodeFileColdToHotRainbow.txt") is not None:
        display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeFileColdToHotRainbow.txt")
    if created_diff:
        place_in_study(difference_node, synthetic_node)

    mask_text = {"given": f"inside '{mask_node.GetName()}'" if mask_node is not None else "given mask",
                 "body": "inside the body (reference > -500 HU)", "all": "all voxels"}[m.mask_source]
    rows = [
        ("MAE", _fmt(m.mae, 1), "HU", f"mean |synthetic - reference| {mask_text} (SynthRAD2023)"),
        ("PSNR", _fmt(m.psnr, 2), "dB", "10 log10(4024^2 / MSE), values clipped to [-1024, 3000] HU (SynthRAD2023)"),
        ("SSIM", _fmt(m.ssim, 4), "", "masked 3D SSIM, 7-voxel window, range [-1024, 3000] HU (SynthRAD2023)"),
        ("MS-SSIM", _fmt(m.ms_ssim, 4), "", "5-scale SSIM, range [-1024, 3071] HU (SynthRAD2025)"
         + ("" if m.ms_ssim is not None else "; needs at least 97 voxels per axis")),
        ("mask voxels", str(m.n_mask_voxels), "voxels", mask_text),
    ]
    if note:
        rows.append(("note", note, "", ""))
    if table_node is None:
        table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{synthetic_node.GetName()} metrics")
        place_in_study(table_node, synthetic_node)
    fill_table(table_node, rows)
    return EvaluationOutput(rows, difference_node, table_node, m, note)
