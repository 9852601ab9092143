"""Scene side of a run: export input nodes, import results, snapshot and roll back the scene.

- :func:`export_inputs` writes each input volume node to a NRRD file (NRRD keeps the geometry in
  full double precision) through :func:`~CrossModalitySynthLib.slicer_support.mrml.node_to_volume` and
  :func:`~CrossModalitySynthLib.io.write_volume`.
- :func:`import_volume_on_grid` reads a result file and checks that it lies on the input's grid
  (same size; origin, spacing and direction equal within what a NIfTI header's float32 fields
  keep); only then does it take the input's exact grid, so the output node's IJK-to-RAS matrix is
  the input's, bit for bit. A result on another grid is refused, never re-labelled.
- :func:`import_results` creates (or fills the user's) synthetic volume node and liver
  segmentation node, names them after the input, gives the synthetic CT the abdominal window and
  places the new nodes in the input's study.
- :class:`SceneSnapshot` records the scene before the import and :meth:`SceneSnapshot.rollback`
  restores it: nodes created since are removed; existing nodes that the run was allowed to fill
  (the output nodes the user picked) get back their name, voxels, geometry, segments and display.

Everything runs on the thread that owns the scene (the GUI thread in Slicer).
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError

# A NIfTI header stores origin and direction as float32; the engine writes its results as NIfTI.
ORIGIN_TOL_MM = 1e-3
SPACING_TOL_MM = 1e-4
DIRECTION_TOL = 1e-5

CT_WINDOW = (400.0, 40.0)  # width, level: abdominal soft tissue


# --------------------------------------------------------------------------- names


def output_names(input_name: str, output_modality: str) -> Tuple[str, str]:
    """(synthetic volume name, liver segmentation name) for an input node named ``input_name``."""
    base = (input_name or "input").strip() or "input"
    what = "synthetic CT" if output_modality.upper() == "CT" else "synthetic MRI"
    return f"{base} {what}", f"{base} liver"


# --------------------------------------------------------------------------- export


def export_inputs(nodes: Sequence, folder: str, names: Sequence[str]) -> List[str]:
    """Write each volume node to ``folder/<name>.nrrd``; returns the paths in the same order."""
    from ..io import write_volume
    from .mrml import node_to_volume

    if len(nodes) != len(names):
        raise ValueError("export_inputs: one name per node")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for node, name in zip(nodes, names):
        if node is None:
            raise InputError(f"No volume is selected for {name}; pick one in the Inputs section.")
        if node.GetImageData() is None:
            raise InputError(f"The volume '{node.GetName()}' has no voxel data; load it again.")
        path = os.path.join(folder, f"{name}.nrrd")
        write_volume(node_to_volume(node), path, overwrite=True)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- import


def check_same_grid(reference, image, what: str) -> None:
    """Raise InputError unless ``image`` lies on ``reference``'s grid (tolerances above)."""
    from ..geometry import Grid

    a, b = Grid.of(reference), Grid.of(image)
    if a.size != b.size:
        raise InputError(
            f"The {what} has {b.size} voxels but the input has {a.size}; it was not imported "
            "(the engine must write results on the input's grid)."
        )
    diffs = (
        ("origin", np.max(np.abs(np.subtract(a.origin, b.origin))), ORIGIN_TOL_MM),
        ("spacing", np.max(np.abs(np.subtract(a.spacing, b.spacing))), SPACING_TOL_MM),
        ("direction", np.max(np.abs(np.subtract(a.direction, b.direction))), DIRECTION_TOL),
    )
    for name, diff, tol in diffs:
        if not diff <= tol:
            raise InputError(
                f"The {what} is not on the input's grid ({name} differs by {float(diff):.3g}); it was not imported."
            )


def import_volume_on_grid(path: str, reference, what: str):
    """Read ``path`` and give it ``reference``'s exact grid after :func:`check_same_grid`."""
    from ..geometry import copy_grid
    from ..io import read_volume

    image = read_volume(path)
    check_same_grid(reference, image, what)
    return copy_grid(reference, image)


def match_input_matrix(node, input_node) -> bool:
    """Give ``node`` the input node's own IJK-to-RAS matrix, bit for bit, when they are the same grid.

    The result image already lies on the input's grid (:func:`check_same_grid`); going from the
    node's matrix to an ITK grid (spacing = column norms, direction = columns / spacing) and back
    can change the last bit of an element. When the input has no parent transform and its voxels
    start at IJK (0, 0, 0), its matrix is the world one and is copied; otherwise (the output then
    carries the world grid of a transformed input) nothing is changed. Returns True if copied.
    """
    import vtk

    if input_node.GetParentTransformNode() is not None or input_node.GetImageData() is None:
        return False
    extent = input_node.GetImageData().GetExtent()
    if extent[0] or extent[2] or extent[4]:
        return False
    if tuple(node.GetImageData().GetDimensions()) != tuple(input_node.GetImageData().GetDimensions()):
        return False
    src, dst = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    input_node.GetIJKToRASMatrix(src)
    node.GetIJKToRASMatrix(dst)
    a = np.array([[src.GetElement(r, c) for c in range(4)] for r in range(4)])
    b = np.array([[dst.GetElement(r, c) for c in range(4)] for r in range(4)])
    if not np.allclose(a, b, rtol=0, atol=ORIGIN_TOL_MM):
        return False
    # A volume node stores origin, spacing and directions and composes its matrix from them: copy
    # those three so both nodes compose the very same matrix. The setters ignore a change below
    # their own tolerance, so each value is first moved away and then set.
    directions = vtk.vtkMatrix4x4()
    input_node.GetIJKToRASDirectionMatrix(directions)
    origin = tuple(input_node.GetOrigin())
    spacing = tuple(input_node.GetSpacing())
    was = node.StartModify()
    try:
        node.SetOrigin(*[v + 1.0 for v in origin])
        node.SetOrigin(*origin)
        node.SetSpacing(*[2.0 * v + 1.0 for v in spacing])
        node.SetSpacing(*spacing)
        away = vtk.vtkMatrix4x4()
        for r in range(3):
            for c in range(3):
                away.SetElement(r, c, -directions.GetElement(r, c))
        node.SetIJKToRASDirectionMatrix(away)
        node.SetIJKToRASDirectionMatrix(directions)
    finally:
        node.EndModify(was)
    node.GetIJKToRASMatrix(dst)
    return all(src.GetElement(r, c) == dst.GetElement(r, c) for r in range(4) for c in range(4))


@dataclass
class ImportedResults:
    volume_node: object
    segmentation_node: Optional[object]
    liver_voxels: Optional[int]


def import_results(
    out_dir: str,
    summary: dict,
    input_node,
    reference_image,
    output_modality: str,
    volume_node=None,
    segmentation_node=None,
    scene=None,
) -> ImportedResults:
    """Load a finished run's outputs into the scene.

    :param out_dir: the run's output folder (``synthetic.nii.gz``, ``liver.nii.gz``).
    :param summary: the run's summary (its ``outputs`` names the files).
    :param input_node: the first input volume node (names, study placement).
    :param reference_image: that node's exported image (the grid the results must lie on).
    :param output_modality: ``"CT"`` or ``"MR"`` (the model's output).
    :param volume_node: an existing volume node to fill (None: create one).
    :param segmentation_node: an existing segmentation node to fill (None: create one, if a
        liver result exists).
    """
    import SimpleITK as sitk

    from .mrml import labels_to_segmentation, place_in_study, set_ct_window, volume_to_node

    scene = scene if scene is not None else input_node.GetScene()
    outputs = dict(summary.get("outputs") or {"synthetic": "synthetic.nii.gz"})
    volume_name, seg_name = output_names(input_node.GetName(), output_modality)

    synthetic = import_volume_on_grid(os.path.join(out_dir, outputs["synthetic"]), reference_image, "synthetic volume")
    created_volume = volume_node is None
    node = volume_to_node(synthetic, name=volume_name if created_volume else None, scene=scene, node=volume_node)
    match_input_matrix(node, input_node)
    if output_modality.upper() == "CT":
        set_ct_window(node, *CT_WINDOW)
    else:
        display = node.GetDisplayNode()
        if display is not None:
            display.AutoWindowLevelOn()
    if created_volume:
        place_in_study(node, input_node)

    seg = None
    liver_voxels = None
    if "liver" in outputs:
        liver = import_volume_on_grid(os.path.join(out_dir, outputs["liver"]), reference_image, "liver segmentation")
        liver = sitk.Cast(liver > 0, sitk.sitkUInt8)  # the liver label is 1 (labels.LIVER)
        liver_voxels = int(sitk.GetArrayViewFromImage(liver).sum())
        created_seg = segmentation_node is None
        seg = labels_to_segmentation(liver, name=seg_name if created_seg else None, scene=scene,
                                     node=segmentation_node, reference_node=input_node, closed_surface=True)
        display = seg.GetDisplayNode()
        if display is not None:  # outline in the slice views, surface in 3D
            display.SetVisibility2DFill(False)
            display.SetVisibility2DOutline(True)
            display.SetVisibility3D(True)
        if created_seg:
            place_in_study(seg, input_node)
    return ImportedResults(node, seg, liver_voxels)


# --------------------------------------------------------------------------- snapshot / rollback


def scene_nodes(scene, class_name: Optional[str] = None) -> List:
    """The nodes of ``scene`` (those of ``class_name`` only, when given), as a list."""
    collection = scene.GetNodes() if class_name is None else scene.GetNodesByClass(class_name)
    return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]


def _copy_matrix(node):
    import vtk

    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return m


@dataclass
class _VolumeState:
    name: str
    image: object  # vtkImageData copy or None
    ijk_to_ras: object
    display: Optional[Tuple[bool, float, float, Optional[str]]]


@dataclass
class _SegmentationState:
    name: str
    segmentation: object  # vtkSegmentation copy
    display: Optional[Tuple[bool, bool, bool]]


class SceneSnapshot:
    """What the scene holds now, to return to it after a failed or cancelled import.

    :param scene: the MRML scene.
    :param keep: existing nodes the run may modify (the output nodes the user picked); their
        content is saved now and put back by :meth:`rollback`.
    """

    def __init__(self, scene, keep: Sequence = ()):
        import vtk

        self.scene = scene
        self.node_ids = [n.GetID() for n in scene_nodes(scene)]
        self._ids = set(self.node_ids)
        self._saved: Dict[str, object] = {}
        for node in keep:
            if node is None:
                continue
            if node.IsA("vtkMRMLSegmentationNode"):
                copy = node.GetSegmentation().NewInstance()  # a vtkSegmentation, without importing slicer
                copy.DeepCopy(node.GetSegmentation())
                d = node.GetDisplayNode()
                disp = None if d is None else (bool(d.GetVisibility2DFill()), bool(d.GetVisibility2DOutline()),
                                              bool(d.GetVisibility3D()))
                self._saved[node.GetID()] = _SegmentationState(node.GetName(), copy, disp)
            elif node.IsA("vtkMRMLScalarVolumeNode"):
                image = None
                if node.GetImageData() is not None:
                    image = vtk.vtkImageData()
                    image.DeepCopy(node.GetImageData())
                d = node.GetDisplayNode()
                disp = None
                if d is not None:
                    disp = (bool(d.GetAutoWindowLevel()), float(d.GetWindow()), float(d.GetLevel()), d.GetColorNodeID())
                self._saved[node.GetID()] = _VolumeState(node.GetName(), image, _copy_matrix(node), disp)

    def created_nodes(self) -> List:
        """Nodes added to the scene since the snapshot."""
        return [n for n in scene_nodes(self.scene) if n.GetID() not in self._ids]

    def rollback(self) -> None:
        """Remove the nodes created since the snapshot and restore the saved nodes' content."""
        created = self.created_nodes()
        # data nodes first (removing them also removes their display/storage nodes), then the rest
        created.sort(key=lambda n: 0 if n.IsA("vtkMRMLDisplayableNode") else 1)
        for node in created:
            if node.GetScene() is self.scene:
                self.scene.RemoveNode(node)
        for node_id, state in self._saved.items():
            node = self.scene.GetNodeByID(node_id)
            if node is None:
                continue
            if isinstance(state, _VolumeState):
                was = node.StartModify()
                try:
                    node.SetName(state.name)
                    node.SetIJKToRASMatrix(state.ijk_to_ras)
                    node.SetAndObserveImageData(state.image)
                finally:
                    node.EndModify(was)
                d = node.GetDisplayNode()
                if d is not None and state.display is not None:
                    auto, window, level, color = state.display
                    d.SetAutoWindowLevel(auto)
                    if not auto:
                        d.SetWindowLevel(window, level)
                    if color:
                        d.SetAndObserveColorNodeID(color)
            elif isinstance(state, _SegmentationState):
                node.SetName(state.name)
                node.GetSegmentation().DeepCopy(state.segmentation)
                d = node.GetDisplayNode()
                if d is not None and state.display is not None:
                    d.SetVisibility2DFill(state.display[0])
                    d.SetVisibility2DOutline(state.display[1])
                    d.SetVisibility3D(state.display[2])
