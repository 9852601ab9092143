"""The "compare" layout: input MRI and synthetic CT side by side, linked, with the liver.

Layout (a custom layout registered with the scene's layout node)::

    +-----------------+-----------------+-----------+
    | Red: MRI axial  | Yellow: sCT ax. |           |
    +-----------------+-----------------+  3D view  |
    | Green: MRI cor. | CMSynthCoronal  |  (liver)  |
    |                 | : sCT coronal   |           |
    +-----------------+-----------------+-----------+

Left views show the input, right views the synthetic volume; slice positions are linked (views of
one orientation move together), the liver segmentation is drawn as an outline in every slice view
and as a surface in 3D. Everything here works on MRML nodes only; creating the views from the
layout is done by Slicer's layout manager when the arrangement changes, so headless scenes (no
layout node, no slice nodes) simply get nothing to assign.
"""

from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from .scene import scene_nodes

COMPARE_LAYOUT_ID = 5801  # custom layout ids are above the built-in ones
SECOND_CORONAL = "CMSynthCoronal"

# view (layout name) -> (which volume, orientation)
VIEWS: Dict[str, Tuple[str, str]] = {
    "Red": ("input", "Axial"),
    "Yellow": ("synthetic", "Axial"),
    "Green": ("input", "Coronal"),
    SECOND_CORONAL: ("synthetic", "Coronal"),
}


def _slice_view(tag: str, orientation: str, label: str, color: str) -> str:
    return (
        f'<item><view class="vtkMRMLSliceNode" singletontag="{tag}">'
        f'<property name="orientation" action="default">{orientation}</property>'
        f'<property name="viewlabel" action="default">{label}</property>'
        f'<property name="viewcolor" action="default">{color}</property>'
        "</view></item>"
    )


def compare_layout_xml() -> str:
    """The layout description (Slicer's layout XML) of the compare layout."""
    top = _slice_view("Red", "Axial", "R", "#F34A33") + _slice_view("Yellow", "Axial", "Y", "#EDD54C")
    bottom = _slice_view("Green", "Coronal", "G", "#6EB04B") + _slice_view(SECOND_CORONAL, "Coronal", "C", "#8C6BB1")
    return (
        '<layout type="horizontal" split="true">'
        '<item splitSize="700"><layout type="vertical" split="true">'
        f'<item><layout type="horizontal" split="true">{top}</layout></item>'
        f'<item><layout type="horizontal" split="true">{bottom}</layout></item>'
        "</layout></item>"
        '<item splitSize="300"><view class="vtkMRMLViewNode" singletontag="1">'
        '<property name="viewlabel" action="default">1</property></view></item>'
        "</layout>"
    )


def _compare_views(scene) -> Iterator[Tuple[str, object, Optional[object]]]:
    """(view name, slice composite node, slice node or None) of each compare view in the scene."""
    slice_nodes = {n.GetLayoutName(): n for n in scene_nodes(scene, "vtkMRMLSliceNode")}
    for composite in scene_nodes(scene, "vtkMRMLSliceCompositeNode"):
        view = composite.GetLayoutName()
        if view in VIEWS:
            yield view, composite, slice_nodes.get(view)


def register_compare_layout(scene) -> bool:
    """Add the layout description to the scene's layout node and switch to it (False if none)."""
    layout = layout_node(scene)
    if layout is None:
        return False
    if not layout.IsLayoutDescription(COMPARE_LAYOUT_ID):
        layout.AddLayoutDescription(COMPARE_LAYOUT_ID, compare_layout_xml())
    else:
        layout.SetLayoutDescription(COMPARE_LAYOUT_ID, compare_layout_xml())
    layout.SetViewArrangement(COMPARE_LAYOUT_ID)
    return True


def assign_compare_views(scene, input_node, synthetic_node, segmentation_node=None) -> Dict[str, str]:
    """Put the volumes into the compare views, link them and show the liver outline.

    Returns view name -> ID of the background volume set there (views that do not exist in the
    scene are skipped).
    """
    ids = {"input": input_node.GetID(), "synthetic": synthetic_node.GetID()}
    assigned = {}
    for view, composite, slice_node in _compare_views(scene):
        which, orientation = VIEWS[view]
        was = composite.StartModify()
        try:
            composite.SetBackgroundVolumeID(ids[which])
            composite.SetForegroundVolumeID(None)
            composite.SetLabelVolumeID(None)
            composite.SetLinkedControl(True)
        finally:
            composite.EndModify(was)
        if slice_node is not None:
            slice_node.SetOrientation(orientation)
        assigned[view] = ids[which]
    if segmentation_node is not None:
        display = segmentation_node.GetDisplayNode()
        if display is None:
            segmentation_node.CreateDefaultDisplayNodes()
            display = segmentation_node.GetDisplayNode()
        display.SetVisibility(True)
        display.SetVisibility2DFill(False)
        display.SetVisibility2DOutline(True)
        display.SetVisibility3D(True)
        display.RemoveAllViewNodeIDs()  # shown in every view, the left and the right ones
    return assigned


def view_state(scene) -> Dict[str, Tuple[str, bool]]:
    """Orientation and linked control of each slice view the compare layout changes (to put back)."""
    return {view: (slice_node.GetOrientation(), bool(composite.GetLinkedControl()))
            for view, composite, slice_node in _compare_views(scene) if slice_node is not None}


def restore_view_state(scene, state: Dict[str, Tuple[str, bool]]) -> None:
    """Put back what :func:`view_state` recorded (views that no longer exist are skipped)."""
    for view, composite, slice_node in _compare_views(scene):
        if view in state and slice_node is not None:
            orientation, linked = state[view]
            slice_node.SetOrientation(orientation)
            composite.SetLinkedControl(linked)


def layout_node(scene):
    """The scene's layout node, or None (headless scenes)."""
    found = scene_nodes(scene, "vtkMRMLLayoutNode")
    return found[0] if found else None


def segment_centroid_ras(segmentation_node, reference_node, segment_name: str = "liver") -> Optional[Tuple[float, float, float]]:
    """RAS centre of a segment, computed on ``reference_node``'s grid (None when empty or missing)."""
    import SimpleITK as sitk

    from .mrml import LPS_TO_RAS, label_ids_for_segments, segmentation_to_labels

    segmentation = segmentation_node.GetSegmentation()
    segment_id = segmentation.GetSegmentIdBySegmentName(segment_name)
    if not segment_id:
        return None
    label = label_ids_for_segments(segmentation_node)[segment_id]
    labels = segmentation_to_labels(segmentation_node, reference_node)
    idx = np.argwhere(sitk.GetArrayViewFromImage(labels) == label)
    if not len(idx):
        return None
    k, j, i = idx.mean(axis=0)
    lps = labels.TransformContinuousIndexToPhysicalPoint((float(i), float(j), float(k)))
    ras = LPS_TO_RAS @ np.asarray(lps, dtype=float)
    return (float(ras[0]), float(ras[1]), float(ras[2]))


def center_slices_on(scene, ras: Tuple[float, float, float]) -> int:
    """Move every compare slice view to the RAS point; returns how many views moved."""
    moved = 0
    for node in scene_nodes(scene, "vtkMRMLSliceNode"):
        if node.GetLayoutName() in VIEWS:
            node.JumpSliceByCentering(float(ras[0]), float(ras[1]), float(ras[2]))
            moved += 1
    return moved
