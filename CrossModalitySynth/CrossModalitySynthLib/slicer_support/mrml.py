"""The bridge between the library's volume type (:class:`SimpleITK.Image`) and Slicer's MRML nodes.

This is the only module of the library that imports ``slicer`` (and VTK); it does so inside its
functions, so importing this module never needs Slicer. It works inside the Slicer application
and headless with the ``slicer-core`` package (a scene, ``slicer.mrmlScene`` and the volumes and
segmentations logics set up by the caller; see ``Testing/testsupport/mrml.py``).

Conventions
-----------
* **Coordinates.** ITK/SimpleITK images live in **LPS** (x to the patient's Left, y to Posterior,
  z to Superior); MRML nodes live in **RAS** (Right, Anterior, Superior). The two differ by
  ``F = diag(-1, -1, 1)``: ``p_RAS = F @ p_LPS``. With ITK's ``D`` (direction, columns are the
  index axes), ``s`` (spacing) and ``o`` (origin), a node gets exactly::

      IJKToRAS = [[F @ D @ diag(s), F @ o],
                  [0 0 0,           1    ]]

  so voxel ``(i, j, k)`` of the image and IJK ``(i, j, k)`` of the node are the same point in the
  patient. Oblique directions and anisotropic spacings are carried over unchanged (no resampling).
* **Array order.** numpy arrays from SimpleITK and from VTK image data are indexed ``[z, y, x]``
  (= ``[k, j, i]``): ``array.shape == image.GetSize()[::-1]``.
* **Copies.** Voxels are always deep-copied in both directions; a returned image or node never
  shares memory with its source.
* **Parent transforms.** A node under a *linear* parent transform is read in world coordinates
  (the transform is applied to its grid); a non-linear transform, or one that shears the grid,
  is refused with :class:`~CrossModalitySynthLib.errors.InputError` (harden or resample first).
  Nodes this module creates have no parent transform.
"""

import colorsys
from typing import Dict, Iterable, Optional, Tuple, Union

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import Grid, image_on_grid
from ..labels import LABELS

# RAS = LPS_TO_RAS @ LPS (and the inverse: the matrix is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])

_ORTHONORMAL_TOL = 1e-6

LabelTable = Dict[int, Tuple[str, Tuple[float, float, float]]]


# --------------------------------------------------------------------------- pure geometry


def ijk_to_ras_matrix(grid: Union[Grid, sitk.Image]) -> np.ndarray:
    """The 4x4 IJK-to-RAS matrix of a 3D grid given in ITK's LPS convention (no Slicer needed)."""
    if isinstance(grid, sitk.Image):
        grid = Grid.of(grid)
    if len(grid.size) != 3:
        raise InputError(f"Slicer volumes are 3D but this image has {len(grid.size)} dimensions; pass a 3D image.")
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ grid.index_to_physical_matrix()


def grid_from_ijk_to_ras(ijk_to_ras: np.ndarray, size: Iterable[int]) -> Grid:
    """The LPS :class:`Grid` of a volume whose IJK-to-RAS matrix is ``ijk_to_ras`` (4x4).

    Spacing is the length of each index axis, direction its unit vector. Raises
    :class:`InputError` when the axes are not orthogonal (a sheared grid cannot be an ITK image).
    """
    m = np.asarray(ijk_to_ras, dtype=float)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ m
    axes = lps[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    if np.any(spacing <= 0):
        raise InputError("The volume's geometry has a zero spacing; fix the volume or its transform.")
    direction = axes / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=_ORTHONORMAL_TOL, rtol=0):
        raise InputError(
            "The volume's grid is sheared (e.g. by a non-rigid parent transform); "
            "harden and resample it in Slicer before using it here."
        )
    return Grid(
        tuple(int(s) for s in size),
        tuple(float(v) for v in lps[:3, 3]),
        tuple(float(v) for v in spacing),
        tuple(float(v) for v in direction.ravel()),
    )


# --------------------------------------------------------------------------- VTK helpers


def _slicer():
    import slicer  # noqa: PLC0415  (only this module imports slicer, and only when called)

    return slicer


def _vtk_matrix(m: np.ndarray):
    import vtk

    vm = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            vm.SetElement(r, c, float(m[r, c]))
    return vm


def _np_matrix(vm) -> np.ndarray:
    return np.array([[vm.GetElement(r, c) for c in range(4)] for r in range(4)])


def _scene_of(scene, node):
    if scene is None and node is not None:
        scene = node.GetScene()
    if scene is None:
        scene = getattr(_slicer(), "mrmlScene", None)
    if scene is None:
        raise RuntimeError("No MRML scene: pass scene= or set slicer.mrmlScene.")
    return scene


def _to_world_matrix(node) -> Optional[np.ndarray]:
    """Local-to-world 4x4 matrix of ``node``'s parent transform, or None when it has none."""
    parent = node.GetParentTransformNode() if hasattr(node, "GetParentTransformNode") else None
    if parent is None:
        return None
    if not parent.IsTransformToWorldLinear():
        raise InputError(
            f"'{node.GetName()}' is under a non-linear transform; harden the transform "
            "(Data module, right-click > Harden transform) and try again."
        )
    vm = _vtk_matrix(np.eye(4))
    parent.GetMatrixTransformToWorld(vm)
    return _np_matrix(vm)


def _image_data_from_array(array: np.ndarray):
    """A vtkImageData holding a deep copy of a (z, y, x) scalar array; origin 0, spacing 1."""
    import vtk
    from vtk.util import numpy_support

    array = np.ascontiguousarray(array)
    vimage = vtk.vtkImageData()
    vimage.SetDimensions(int(array.shape[2]), int(array.shape[1]), int(array.shape[0]))
    vtype = numpy_support.get_vtk_array_type(array.dtype)
    scalars = numpy_support.numpy_to_vtk(array.ravel(), deep=1, array_type=vtype)
    scalars.SetName("ImageScalars")
    vimage.GetPointData().SetScalars(scalars)
    return vimage


def _array_from_image_data(vimage) -> np.ndarray:
    """A (z, y, x) numpy copy of a scalar vtkImageData's voxels."""
    from vtk.util import numpy_support

    scalars = vimage.GetPointData().GetScalars()
    if scalars is None:
        raise InputError("The volume has no voxel data; load or compute it first.")
    if scalars.GetNumberOfComponents() != 1:
        raise InputError(
            f"The volume has {scalars.GetNumberOfComponents()} components per voxel; "
            "pass a scalar (single-component) volume."
        )
    dims = vimage.GetDimensions()
    return np.array(numpy_support.vtk_to_numpy(scalars), copy=True).reshape(dims[2], dims[1], dims[0])


def _check_3d_scalar(image: sitk.Image, what: str) -> None:
    if not isinstance(image, sitk.Image):
        raise TypeError(f"{what} must be a SimpleITK.Image, not {type(image).__name__}")
    if image.GetDimension() != 3:
        raise InputError(f"The {what} has {image.GetDimension()} dimensions; Slicer volumes are 3D, pass a 3D image.")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"The {what} has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
            "pass one scalar channel at a time."
        )


def _node_grid(node) -> Grid:
    """World LPS grid of a volume node (parent linear transform applied)."""
    vimage = node.GetImageData()
    if vimage is None:
        raise InputError(f"The volume '{node.GetName()}' has no voxel data; load or compute it first.")
    vm = _vtk_matrix(np.eye(4))
    node.GetIJKToRASMatrix(vm)
    m = _np_matrix(vm)
    extent = vimage.GetExtent()
    if extent[0] or extent[2] or extent[4]:  # image data not starting at IJK (0, 0, 0)
        shift = np.eye(4)
        shift[:3, 3] = (extent[0], extent[2], extent[4])
        m = m @ shift
    world = _to_world_matrix(node)
    if world is not None:
        m = world @ m
    return grid_from_ijk_to_ras(m, vimage.GetDimensions())


def _oriented_image(grid: Grid, array: Optional[np.ndarray] = None):
    """A vtkOrientedImageData on ``grid`` (RAS image-to-world), with a copy of ``array`` if given."""
    slicer = _slicer()
    oriented = slicer.vtkOrientedImageData()
    if array is not None:
        oriented.ShallowCopy(_image_data_from_array(array))
    else:
        oriented.SetDimensions(*[int(s) for s in grid.size])
    oriented.SetOrigin(0.0, 0.0, 0.0)
    oriented.SetSpacing(1.0, 1.0, 1.0)
    oriented.SetImageToWorldMatrix(_vtk_matrix(ijk_to_ras_matrix(grid)))
    return oriented


# --------------------------------------------------------------------------- volumes


def volume_to_node(image: sitk.Image, name: Optional[str] = None, scene=None, node=None, labelmap: bool = False):
    """Copy a 3D scalar SimpleITK image into a ``vtkMRMLScalarVolumeNode``.

    :param image: 3D scalar image (LPS geometry); its voxel type is kept (float32 stays float32,
        int16 stays short ...).
    :param name: node name; for an existing ``node``, None keeps its name.
    :param scene: the scene to add a new node to (default: ``node``'s scene, else ``slicer.mrmlScene``).
    :param node: an existing volume node to update in place: its display node (window/level,
        colour table) and its ID are kept, its voxels and geometry are replaced.
    :param labelmap: create a ``vtkMRMLLabelMapVolumeNode`` instead of a scalar volume.
    :returns: the node, whose IJK-to-RAS matrix is exactly ``diag(-1,-1,1) @`` the image's
        index-to-LPS matrix (see the module docstring); it has no parent transform.
    """
    _check_3d_scalar(image, "image")
    scene = _scene_of(scene, node)
    array = sitk.GetArrayFromImage(image)  # (z, y, x), a copy
    grid = Grid.of(image)
    ras_origin = LPS_TO_RAS @ np.asarray(grid.origin)
    ras_directions = LPS_TO_RAS @ grid.direction_matrix

    if node is None:
        class_name = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
        node = scene.AddNewNodeByClass(class_name, name or "")
        new_node = True
    else:
        if not node.IsA("vtkMRMLScalarVolumeNode"):
            raise TypeError(f"node must be a scalar volume node, not {node.GetClassName()}")
        if node.GetScene() is None:
            scene.AddNode(node)
        new_node = False

    was_modifying = node.StartModify()
    try:
        if name is not None:
            node.SetName(name)
        node.SetOrigin(*[float(v) for v in ras_origin])
        node.SetSpacing(*[float(v) for v in grid.spacing])
        direction_matrix = np.eye(4)
        direction_matrix[:3, :3] = ras_directions
        node.SetIJKToRASDirectionMatrix(_vtk_matrix(direction_matrix))
        node.SetAndObserveImageData(_image_data_from_array(array))
    finally:
        node.EndModify(was_modifying)
    if new_node or node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    return node


def node_to_volume(node) -> sitk.Image:
    """A SimpleITK image (LPS) with a copy of a scalar volume node's voxels and its world geometry.

    The inverse of :func:`volume_to_node`: origin and directions are converted RAS -> LPS, the
    spacing is kept, the voxel type is kept. A linear parent transform is applied to the grid
    (non-linear or shearing ones raise :class:`InputError`). The returned image does not share
    memory with VTK.
    """
    if node is None or not node.IsA("vtkMRMLVolumeNode"):
        raise TypeError("node must be a volume node")
    grid = _node_grid(node)
    return image_on_grid(_array_from_image_data(node.GetImageData()), grid)


def set_ct_window(node, window: float = 400.0, level: float = 40.0):
    """Show a CT volume with a fixed window/level (default: abdominal soft tissue, W 400 / L 40 HU).

    Creates the display node if the volume has none, turns automatic window/level off and uses
    the grey colour table. Returns the display node.
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    display = node.GetDisplayNode()
    if display is None:
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
    was_modifying = display.StartModify()
    try:
        display.AutoWindowLevelOff()
        display.SetWindowLevel(float(window), float(level))
        scene = node.GetScene()
        if scene is not None and scene.GetNodeByID("vtkMRMLColorTableNodeGrey") is not None:
            display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
    finally:
        display.EndModify(was_modifying)
    return display


# --------------------------------------------------------------------------- segmentations


def _fallback_colour(label: int) -> Tuple[float, float, float]:
    """A stable, saturated colour for an id that the label table does not know."""
    hue = (label * 0.618033988749895) % 1.0
    return tuple(float(c) for c in colorsys.hsv_to_rgb(hue, 0.65, 0.9))


def _name_and_colour(label: int, labels: LabelTable) -> Tuple[str, Tuple[float, float, float]]:
    if label in labels:
        name, colour = labels[label]
        return name, tuple(float(c) for c in colour)
    return f"label {label}", _fallback_colour(label)


def labels_to_segmentation(
    label_image: sitk.Image,
    name: Optional[str] = None,
    scene=None,
    node=None,
    labels: Optional[LabelTable] = None,
    reference_node=None,
    closed_surface: bool = False,
):
    """A ``vtkMRMLSegmentationNode`` with one segment per non-zero label id in ``label_image``.

    :param label_image: 3D integer label image (LPS geometry), 0 = background.
    :param name: node name (None keeps an existing node's name).
    :param scene: scene for a new node (default: ``node``'s scene, else ``slicer.mrmlScene``).
    :param node: an existing segmentation node: its segments are replaced, its display node kept.
    :param labels: id -> (name, rgb 0..1) table, :data:`~CrossModalitySynthLib.labels.LABELS` by
        default; ids missing from it get the name ``"label N"`` and a generated colour.
    :param reference_node: volume node whose geometry becomes the segmentation's reference
        geometry (used by the Segment Editor); default: the label image's own grid.
    :param closed_surface: also build the closed-surface (3D) representation.
    :returns: the node. Segments are ordered by id, each segment's label value is its id, and
        every segment's binary labelmap lies exactly on the label image's grid (not resampled,
        also when ``reference_node`` has another grid).
    """
    _check_3d_scalar(label_image, "label image")
    slicer = _slicer()
    labels = LABELS if labels is None else labels
    array = sitk.GetArrayFromImage(label_image)
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError("The label image has a non-integer voxel type; cast it to an integer type (e.g. UInt8) first.")
    if array.size and array.min() < 0:
        raise InputError("The label image contains negative ids; label ids must be 0 (background) or positive.")
    top = int(array.max()) if array.size else 0
    if top > np.iinfo(np.int16).max:
        raise InputError(f"The label image contains id {top}; ids above 32767 are not supported by Slicer labelmaps.")
    array = array.astype(np.uint8 if top <= 255 else np.int16)
    grid = Grid.of(label_image)

    scene = _scene_of(scene, node)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name or "")
        node.CreateDefaultDisplayNodes()
    else:
        if not node.IsA("vtkMRMLSegmentationNode"):
            raise TypeError(f"node must be a segmentation node, not {node.GetClassName()}")
        if node.GetScene() is None:
            scene.AddNode(node)
        if name is not None:
            node.SetName(name)
        node.GetSegmentation().RemoveAllSegments()
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()

    segmentation = node.GetSegmentation()
    oriented = _oriented_image(grid, array)
    if reference_node is not None:
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    else:
        converter = slicer.vtkSegmentationConverter
        segmentation.SetConversionParameter(
            converter.GetReferenceImageGeometryParameterName(), converter.SerializeImageGeometry(oriented)
        )

    if top > 0:
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        if not logic.ImportLabelmapToSegmentationNode(oriented, node, "label"):
            raise RuntimeError("Slicer could not import the label image into the segmentation.")
        for index in range(segmentation.GetNumberOfSegments()):
            segment = segmentation.GetNthSegment(index)
            seg_name, colour = _name_and_colour(int(segment.GetLabelValue()), labels)
            segment.SetName(seg_name)
            segment.SetColor(*colour)
    if closed_surface and segmentation.GetNumberOfSegments():
        if not node.CreateClosedSurfaceRepresentation():
            raise RuntimeError(
                "Slicer could not build the closed-surface representation "
                "(is the Segmentations module logic created?)."
            )
    return node


def label_ids_for_segments(seg_node, labels: Optional[LabelTable] = None) -> Dict[str, int]:
    """segment ID -> label id, found by segment name.

    A name in ``labels`` (case-insensitive) gets that id; ``"label N"`` gets N; any other name
    gets the next free id above all ids in ``labels`` and those already used, in segment order.
    Segments with the same name share an id.
    """
    labels = LABELS if labels is None else labels
    by_name = {str(entry[0]).strip().lower(): int(label) for label, entry in labels.items()}
    segmentation = seg_node.GetSegmentation()
    result: Dict[str, int] = {}
    unknown = []
    for index in range(segmentation.GetNumberOfSegments()):
        seg_id = segmentation.GetNthSegmentID(index)
        seg_name = segmentation.GetNthSegment(index).GetName().strip().lower()
        if seg_name in by_name:
            result[seg_id] = by_name[seg_name]
        elif seg_name.startswith("label ") and seg_name[6:].strip().isdigit() and int(seg_name[6:]) > 0:
            result[seg_id] = int(seg_name[6:])
        else:
            unknown.append((seg_id, seg_name))
    next_id = max([0, *labels.keys(), *result.values()]) + 1
    new_names: Dict[str, int] = {}
    for seg_id, seg_name in unknown:
        if seg_name not in new_names:
            new_names[seg_name] = next_id
            next_id += 1
        result[seg_id] = new_names[seg_name]
    return result


def _reference_grid(reference) -> Grid:
    if isinstance(reference, Grid):
        return reference
    if isinstance(reference, sitk.Image):
        return Grid.of(reference)
    if hasattr(reference, "IsA") and reference.IsA("vtkMRMLVolumeNode"):
        return _node_grid(reference)
    raise TypeError("reference must be a volume node, a SimpleITK image or a Grid")


def segmentation_to_labels(seg_node, reference, labels: Optional[LabelTable] = None) -> sitk.Image:
    """A label image (LPS) of a segmentation node on the grid of ``reference``.

    :param seg_node: segmentation node; segments without a binary labelmap get one converted.
    :param reference: a volume node (its world grid), a SimpleITK image or a :class:`Grid`.
    :param labels: the table used to map segment names back to ids (see :func:`label_ids_for_segments`).
    :returns: UInt8 image (Int16 when an id exceeds 255) on exactly the reference grid;
        segments on another grid are resampled with nearest neighbour; where segments overlap,
        the later segment wins.
    """
    slicer = _slicer()
    import vtk

    grid = _reference_grid(reference)
    if len(grid.size) != 3:
        raise InputError("The reference grid must be 3D.")
    mapping = label_ids_for_segments(seg_node, labels)
    top = max(mapping.values(), default=0)
    out_dtype = np.uint8 if top <= 255 else np.int16

    # The merge works in the segmentation's own (local) coordinates.
    local_grid = grid
    world = _to_world_matrix(seg_node)
    if world is not None:
        local = np.linalg.inv(world) @ ijk_to_ras_matrix(grid)
        local_grid = grid_from_ijk_to_ras(local, grid.size)

    if mapping:
        if not seg_node.GetSegmentation().ContainsRepresentation(
            slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
        ):
            if not seg_node.CreateBinaryLabelmapRepresentation():
                raise RuntimeError("Slicer could not convert the segmentation to a binary labelmap.")
        segment_ids = vtk.vtkStringArray()
        values = vtk.vtkIntArray()
        for seg_id, label in mapping.items():
            segment_ids.InsertNextValue(seg_id)
            values.InsertNextValue(int(label))
        merged = slicer.vtkOrientedImageData()
        ok = seg_node.GenerateMergedLabelmapForAllSegments(
            merged, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, _oriented_image(local_grid), segment_ids, values
        )
        if not ok:
            raise RuntimeError("Slicer could not merge the segments into a labelmap.")
        array = _array_from_image_data(merged).astype(out_dtype)
        if array.shape != tuple(grid.size[::-1]):
            raise RuntimeError(f"Merged labelmap has shape {array.shape}, expected {tuple(grid.size[::-1])}.")
    else:
        array = np.zeros(tuple(grid.size[::-1]), dtype=out_dtype)
    return image_on_grid(array, grid)


# --------------------------------------------------------------------------- subject hierarchy


def place_in_study(new_node, input_node) -> int:
    """Put ``new_node`` beside ``input_node`` in the subject hierarchy (same parent: its study).

    A result then appears under the patient/study of the volume it was computed from. In the
    Slicer application every node already has a hierarchy item; headless (slicer-core, no Qt
    plugins) nodes get none automatically, so missing items are created here (the input's under
    the scene root). Returns the new node's item ID.
    """
    slicer = _slicer()
    scene = input_node.GetScene()
    if scene is None or new_node.GetScene() is not scene:
        raise ValueError("Both nodes must be in the same scene.")
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if sh is None:
        raise RuntimeError("The scene has no subject hierarchy.")
    input_item = sh.GetItemByDataNode(input_node)
    if not input_item:
        input_item = sh.CreateItem(sh.GetSceneItemID(), input_node)
    parent = sh.GetItemParent(input_item) or sh.GetSceneItemID()
    new_item = sh.GetItemByDataNode(new_node)
    if not new_item:
        new_item = sh.CreateItem(parent, new_node)
    elif sh.GetItemParent(new_item) != parent:
        sh.SetItemParent(new_item, parent)
    return int(new_item)
