"""The SimpleITK <-> MRML bridge against a real slicer-core scene (no mocks).

Geometry is checked three independent ways: the node's IJKToRAS matrix against the LPS->RAS
formula, single voxel positions against ITK's TransformIndexToPhysicalPoint, and files written
by Slicer's own storage nodes read back with SimpleITK (and the other way round).
"""

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testsupport.images import make_image, random_rotation

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
import vtk  # noqa: E402  (after the skip: VTK comes with slicer-core)

from CrossModalitySynthLib.slicer_support import mrml as mb  # noqa: E402
from CrossModalitySynthLib.errors import InputError  # noqa: E402
from CrossModalitySynthLib.geometry import Grid  # noqa: E402
from CrossModalitySynthLib.labels import LABELS, LIVER, SPLEEN, RIGHT_KIDNEY, LIVER_LESION  # noqa: E402

FLIP = np.diag([-1.0, -1.0, 1.0])
DTYPES = [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.int64, np.float32, np.float64]


def ijk_to_ras_of(node) -> np.ndarray:
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def assert_same_geometry(a: sitk.Image, b: sitk.Image, tol=1e-6):
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=tol, rtol=0)
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=tol, rtol=0)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=tol, rtol=0)


@st.composite
def oblique_grids(draw):
    """(shape_zyx, spacing, origin, direction) with a random (possibly improper) rotation."""
    seed = draw(st.integers(0, 2**32 - 1))
    rot = random_rotation(np.random.default_rng(seed))
    if draw(st.booleans()):
        rot = rot @ np.diag([1.0, 1.0, -1.0])  # improper: a left-handed index frame
    shape = tuple(draw(st.integers(1, 6)) for _ in range(3))
    spacing = tuple(draw(st.floats(0.2, 6.0)) for _ in range(3))
    origin = tuple(draw(st.floats(-400.0, 400.0)) for _ in range(3))
    return shape, spacing, origin, rot


def label_array(shape=(9, 10, 11), seed=0, ids=(LIVER, RIGHT_KIDNEY, SPLEEN, LIVER_LESION, 42)):
    """Random blobs of the given ids (42 is not in the label table)."""
    rng = np.random.default_rng(seed)
    arr = np.zeros(shape, np.uint8)
    for label in ids:
        lo = [int(rng.integers(0, s - 2)) for s in shape]
        hi = [int(rng.integers(lo_ + 1, s + 1)) for lo_, s in zip(lo, shape)]
        arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = label
    for k, label in enumerate(ids):  # later blobs may cover earlier ones: keep one voxel of each
        arr.flat[arr.size - 1 - k] = label
    return arr


def label_image(arr, spacing=(0.9, 1.3, 3.0), origin=(12.0, -40.0, 7.5), direction=None):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(tuple(float(v) for v in np.asarray(direction).ravel()))
    return img


# --------------------------------------------------------------------------- the fixture


def test_fixture_wires_real_logics(mrml_scene):
    assert slicer.mrmlScene is mrml_scene
    assert mrml_scene.GetNodeByID("vtkMRMLColorTableNodeGrey") is not None
    assert slicer.modules.volumes.logic().IsA("vtkSlicerVolumesLogic")
    assert slicer.modules.segmentations.logic().IsA("vtkSlicerSegmentationsModuleLogic")
    assert slicer.modules.volumes.logic().GetMRMLScene() is mrml_scene
    # An empty segment needs the converter rules the segmentations logic registers.
    seg = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "s")
    vol = slicer.util.addVolumeFromArray(np.zeros((4, 5, 6), np.uint8), np.diag([2.0, 3.0, 4.0, 1.0]), "v")
    seg.SetReferenceImageGeometryParameterFromVolumeNode(vol)
    seg_id = seg.GetSegmentation().AddEmptySegment("x")
    assert seg_id
    mask = np.zeros((4, 5, 6), np.uint8)
    mask[1:3, 2:4, 0:5] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray(mask, seg, seg_id, vol)
    np.testing.assert_array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(seg, seg_id, vol), mask)


def test_fixture_scene_context_restores_slicer_globals(mrml_environment):
    before = getattr(slicer, "mrmlScene", None)
    before_modules = getattr(slicer, "modules", None)
    with mrml_environment.scene() as scene:
        assert slicer.mrmlScene is scene
        scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "a")
    with mrml_environment.scene() as scene2:
        assert scene2.GetNodesByClass("vtkMRMLScalarVolumeNode").GetNumberOfItems() == 0
    assert getattr(slicer, "mrmlScene", None) is before
    assert getattr(slicer, "modules", None) is before_modules


# --------------------------------------------------------------------------- volumes


def test_ijk_to_ras_matrix_formula():
    rot = random_rotation(np.random.default_rng(3))
    img = make_image(spacing=(0.7, 1.9, 3.3), origin=(5.0, -6.0, 7.0), direction=rot)
    m = mb.ijk_to_ras_matrix(img)
    expected = np.eye(4)
    expected[:3, :3] = FLIP @ rot @ np.diag([0.7, 1.9, 3.3])
    expected[:3, 3] = [-5.0, 6.0, 7.0]
    np.testing.assert_allclose(m, expected, atol=1e-12)
    back = mb.grid_from_ijk_to_ras(m, img.GetSize())
    assert back.size == tuple(img.GetSize())
    np.testing.assert_allclose(back.spacing, img.GetSpacing(), atol=1e-12)
    np.testing.assert_allclose(back.direction, img.GetDirection(), atol=1e-12)
    np.testing.assert_allclose(back.origin, img.GetOrigin(), atol=1e-12)
    sheared = m.copy()
    sheared[0, 1] += 0.3
    with pytest.raises(InputError, match="sheared"):
        mb.grid_from_ijk_to_ras(sheared, img.GetSize())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid=oblique_grids(), dtype=st.sampled_from(DTYPES), data=st.data())
def test_volume_round_trip_oblique_anisotropic(mrml_environment, grid, dtype, data):
    shape, spacing, origin, rot = grid
    img = make_image(shape_zyx=shape, spacing=spacing, origin=origin, direction=rot, dtype=dtype, seed=len(shape))
    with mrml_environment.scene() as scene:
        node = mb.volume_to_node(img, "vol", scene=scene)
        assert node.GetScene() is scene and node.GetDisplayNode() is not None

        # 1. the node's matrix is the LPS->RAS converted ITK matrix
        expected = np.eye(4)
        expected[:3, :3] = FLIP @ rot @ np.diag(spacing)
        expected[:3, 3] = FLIP @ np.asarray(origin)
        np.testing.assert_allclose(ijk_to_ras_of(node), expected, atol=1e-9, rtol=0)

        # 2. one voxel: the node's RAS position = ITK's physical point with x, y negated
        index = [data.draw(st.integers(0, s - 1)) for s in img.GetSize()]
        ras = ijk_to_ras_of(node) @ np.array(index + [1.0])
        lps = np.array(img.TransformIndexToPhysicalPoint(index))
        np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-9)

        # 3. voxels, via Slicer's own helper, in (z, y, x) order
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), sitk.GetArrayViewFromImage(img))

        # 4. back to SimpleITK
        back = mb.node_to_volume(node)
        assert_same_geometry(back, img)
        assert back.GetPixelID() == img.GetPixelID()
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))


def test_node_to_volume_is_a_copy(mrml_scene):
    img = make_image(dtype=np.int16)
    original = sitk.GetArrayFromImage(img)
    node = mb.volume_to_node(img, "v")
    back = mb.node_to_volume(node)
    slicer.util.arrayFromVolume(node)[:] = 7  # write into VTK's memory
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), original)  # the image kept its voxels
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), original)  # so did the input
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), 7)


def test_update_existing_node_keeps_display_and_id(mrml_scene):
    first = make_image(dtype=np.int16, seed=1)
    node = mb.volume_to_node(first, "ct")
    display = mb.set_ct_window(node)
    node_id, display_id = node.GetID(), display.GetID()

    rot = random_rotation(np.random.default_rng(9))
    second = make_image(shape_zyx=(3, 4, 5), spacing=(2.0, 0.5, 1.5), origin=(1, 2, 3), direction=rot,
                        dtype=np.float32, seed=2)
    same = mb.volume_to_node(second, node=node)
    assert same is node and node.GetID() == node_id and node.GetName() == "ct"
    assert node.GetDisplayNode().GetID() == display_id
    assert node.GetDisplayNode().GetWindow() == pytest.approx(400) and node.GetDisplayNode().GetLevel() == pytest.approx(40)
    back = mb.node_to_volume(node)
    assert_same_geometry(back, second)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(second))
    assert mrml_scene.GetNodesByClass("vtkMRMLScalarVolumeNode").GetNumberOfItems() == 1


def test_set_ct_window(mrml_scene):
    node = mb.volume_to_node(make_image(dtype=np.int16), "ct")
    display = mb.set_ct_window(node, window=350, level=50)
    assert display is node.GetDisplayNode()
    assert not display.GetAutoWindowLevel()
    assert display.GetWindow() == pytest.approx(350) and display.GetLevel() == pytest.approx(50)
    assert display.GetColorNodeID() == "vtkMRMLColorTableNodeGrey"
    with pytest.raises(ValueError):
        mb.set_ct_window(node, window=0)


def test_labelmap_node_option(mrml_scene):
    node = mb.volume_to_node(label_image(label_array()), "lab", labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    assert node.GetDisplayNode().IsA("vtkMRMLLabelMapVolumeDisplayNode")


def test_bad_inputs_get_one_sentence_errors(mrml_scene):
    with pytest.raises(InputError, match="3D"):
        mb.volume_to_node(sitk.Image([4, 5], sitk.sitkFloat32), "x")
    with pytest.raises(InputError, match="components"):
        mb.volume_to_node(sitk.Image([4, 5, 6], sitk.sitkVectorFloat32, 2), "x")
    with pytest.raises(InputError, match="integer"):
        mb.labels_to_segmentation(sitk.Image([4, 5, 6], sitk.sitkFloat32), "x")
    neg = sitk.GetImageFromArray(np.full((2, 2, 2), -1, np.int16))
    with pytest.raises(InputError, match="negative"):
        mb.labels_to_segmentation(neg, "x")
    empty = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InputError, match="no voxel data"):
        mb.node_to_volume(empty)


def test_parent_transforms(mrml_scene):
    img = make_image(dtype=np.int16)
    node = mb.volume_to_node(img, "v")
    tnode = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "t")
    rigid = np.eye(4)
    rigid[:3, :3] = random_rotation(np.random.default_rng(5))
    rigid[:3, 3] = (10.0, -20.0, 30.0)
    tnode.SetMatrixTransformToParent(mb._vtk_matrix(rigid))
    node.SetAndObserveTransformNodeID(tnode.GetID())
    moved = mb.node_to_volume(node)
    # World position of a voxel = transform applied to its local RAS position.
    index = [3, 1, 4]
    local_ras = mb.ijk_to_ras_matrix(img) @ np.array(index + [1.0])
    world_lps = FLIP @ (rigid @ local_ras)[:3]
    np.testing.assert_allclose(moved.TransformIndexToPhysicalPoint(index), world_lps, atol=1e-9)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(moved), sitk.GetArrayFromImage(img))

    tps = vtk.vtkThinPlateSplineTransform()
    src, dst = vtk.vtkPoints(), vtk.vtkPoints()
    for p in [(0, 0, 0), (50, 0, 0), (0, 50, 0), (0, 0, 50)]:
        src.InsertNextPoint(p)
        dst.InsertNextPoint(p[0] + 1, p[1] * 1.1, p[2])
    tps.SetSourceLandmarks(src)
    tps.SetTargetLandmarks(dst)
    warp = mrml_scene.AddNewNodeByClass("vtkMRMLTransformNode", "warp")
    warp.SetAndObserveTransformToParent(tps)
    node.SetAndObserveTransformNodeID(warp.GetID())
    with pytest.raises(InputError, match="non-linear"):
        mb.node_to_volume(node)


# --------------------------------------------------------------------------- segmentations


def segment_by_name(seg_node, name):
    segmentation = seg_node.GetSegmentation()
    return segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(name))


def test_labels_to_segmentation_names_colours_geometry(mrml_scene):
    rot = random_rotation(np.random.default_rng(11))
    arr = label_array()
    img = label_image(arr, direction=rot)
    seg = mb.labels_to_segmentation(img, "organs")
    segmentation = seg.GetSegmentation()
    present = sorted(int(v) for v in np.unique(arr) if v)
    assert segmentation.GetNumberOfSegments() == len(present)
    for index, label in enumerate(present):
        segment = segmentation.GetNthSegment(index)
        assert segment.GetLabelValue() == label
        if label in LABELS:
            assert segment.GetName() == LABELS[label][0]
            np.testing.assert_allclose(segment.GetColor(), LABELS[label][1], atol=1e-6)
        else:
            assert segment.GetName() == f"label {label}"
        # the segment's labelmap lies exactly on the label image's grid (Slicer may crop the
        # extent to the labelled voxels, but the lattice is the same)
        rep = segment.GetRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
        m = vtk.vtkMatrix4x4()
        rep.GetImageToWorldMatrix(m)
        np.testing.assert_allclose(mb._np_matrix(m), mb.ijk_to_ras_matrix(img), atol=1e-9)
        ext = np.array(rep.GetExtent())
        assert np.all(ext[0::2] >= 0) and np.all(ext[1::2] <= np.array(arr.shape[::-1]) - 1)
    # Slicer's own helper agrees voxel for voxel (through a volume node on the same grid)
    ref = mb.volume_to_node(img, "ref")
    liver_id = segmentation.GetSegmentIdBySegmentName("liver")
    np.testing.assert_array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(seg, liver_id, ref), arr == LIVER)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid=oblique_grids(), seed=st.integers(0, 1000))
def test_labels_round_trip_oblique(mrml_environment, grid, seed):
    shape, spacing, origin, rot = grid
    shape = tuple(max(s, 3) for s in shape)
    arr = label_array(shape=shape, seed=seed)
    img = label_image(arr, spacing, origin, rot)
    with mrml_environment.scene() as scene:
        seg = mb.labels_to_segmentation(img, "seg", scene=scene)
        back = mb.segmentation_to_labels(seg, img)
        assert_same_geometry(back, img)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), arr)
        ref_node = mb.volume_to_node(img, "ref", scene=scene)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(mb.segmentation_to_labels(seg, ref_node)), arr)


def test_reference_node_and_other_reference_grids(mrml_scene):
    rot = random_rotation(np.random.default_rng(4))
    arr = label_array(seed=3)
    img = label_image(arr, direction=rot)
    # a bigger grid: same axes, 2/3/1 extra voxels on the low side and 1 on the high side
    pad_lo, pad_hi = (2, 3, 1), (1, 1, 1)
    big = sitk.ConstantPad(sitk.Cast(img, sitk.sitkFloat32), pad_lo, pad_hi, 0.0)
    ref_node = mb.volume_to_node(big, "big")
    seg = mb.labels_to_segmentation(img, "seg", reference_node=ref_node)
    assert seg.GetNodeReference(slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()) is ref_node
    # segments stay on the label grid (not resampled to the reference) ...
    rep = seg.GetSegmentation().GetNthSegment(0).GetRepresentation("Binary labelmap")
    m = vtk.vtkMatrix4x4()
    rep.GetImageToWorldMatrix(m)
    np.testing.assert_allclose(mb._np_matrix(m), mb.ijk_to_ras_matrix(img), atol=1e-9)
    # ... and come back on the reference grid, matching SimpleITK's nearest-neighbour resampling
    on_big = mb.segmentation_to_labels(seg, ref_node)
    assert_same_geometry(on_big, big)
    expected = sitk.Resample(img, big, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(on_big), sitk.GetArrayFromImage(expected))
    # a Grid works too, and back onto the label grid is exact
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mb.segmentation_to_labels(seg, Grid.of(img))), arr)


def test_segment_names_map_back_to_ids(mrml_scene):
    arr = label_array(ids=(LIVER, SPLEEN, 42))
    seg = mb.labels_to_segmentation(label_image(arr), "seg")
    # a user-made segment with a new name gets the next free id above the table
    extra = seg.GetSegmentation().AddEmptySegment("", "tumour")
    mapping = mb.label_ids_for_segments(seg)
    by_name = {seg.GetSegmentation().GetSegment(k).GetName(): v for k, v in mapping.items()}
    assert by_name == {"liver": LIVER, "spleen": SPLEEN, "label 42": 42, "tumour": 43}
    assert mapping[extra] == 43
    # renaming a segment changes the id it is exported with
    segment_by_name(seg, "spleen").SetName("Right Kidney")
    back = sitk.GetArrayFromImage(mb.segmentation_to_labels(seg, label_image(arr)))
    np.testing.assert_array_equal(back, np.where(arr == SPLEEN, RIGHT_KIDNEY, arr))


def test_update_existing_segmentation_and_empty_labels(mrml_scene):
    img = label_image(label_array())
    seg = mb.labels_to_segmentation(img, "seg")
    display_id = seg.GetDisplayNode().GetID()
    arr2 = label_array(ids=(SPLEEN,), seed=8)
    same = mb.labels_to_segmentation(label_image(arr2), node=seg)
    assert same is seg and seg.GetDisplayNode().GetID() == display_id and seg.GetName() == "seg"
    assert seg.GetSegmentation().GetNumberOfSegments() == 1
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mb.segmentation_to_labels(seg, img)), arr2)
    empty = mb.labels_to_segmentation(label_image(np.zeros((3, 4, 5), np.uint8)), "none")
    assert empty.GetSegmentation().GetNumberOfSegments() == 0
    out = mb.segmentation_to_labels(empty, img)
    assert out.GetSize() == img.GetSize() and not np.any(sitk.GetArrayViewFromImage(out))


def test_closed_surface_lies_on_the_labels(mrml_scene):
    rot = random_rotation(np.random.default_rng(21))
    arr = np.zeros((12, 12, 12), np.uint8)
    arr[3:9, 4:10, 2:8] = LIVER
    img = label_image(arr, spacing=(1.0, 1.5, 2.0), direction=rot)
    seg = mb.labels_to_segmentation(img, "seg", closed_surface=True)
    seg_id = seg.GetSegmentation().GetNthSegmentID(0)
    surface = vtk.vtkPolyData()
    assert seg.GetClosedSurfaceRepresentation(seg_id, surface)
    assert surface.GetNumberOfPoints() > 0
    # every surface point lies within the liver block's voxel box (+- one voxel), in index space
    ras_to_ijk = np.linalg.inv(mb.ijk_to_ras_matrix(img))
    pts = np.array([surface.GetPoint(i) for i in range(surface.GetNumberOfPoints())])
    ijk = (ras_to_ijk @ np.c_[pts, np.ones(len(pts))].T).T[:, :3]
    lo, hi = np.array([2, 4, 3]), np.array([7, 9, 8])  # (i, j, k) = (x, y, z) bounds of the block
    assert np.all(ijk >= lo - 1.0) and np.all(ijk <= hi + 1.0)
    # and it reaches out to the block's faces (not a tiny blob somewhere inside)
    assert np.all(ijk.min(axis=0) <= lo) and np.all(ijk.max(axis=0) >= hi)


def test_segmentation_with_surface_source_is_converted(mrml_scene):
    arr = np.zeros((12, 12, 12), np.uint8)
    arr[3:9, 4:10, 2:8] = LIVER
    img = label_image(arr, spacing=(1.0, 1.5, 2.0))
    seg = mb.labels_to_segmentation(img, "seg", closed_surface=True)
    segmentation = seg.GetSegmentation()
    segmentation.SetSourceRepresentationName(slicer.vtkSegmentationConverter.GetClosedSurfaceRepresentationName())
    segmentation.RemoveRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
    back = sitk.GetArrayFromImage(mb.segmentation_to_labels(seg, img))
    # surface -> labelmap is not exact (smoothing), but it must land on the same voxels
    dice = 2 * np.sum((back == LIVER) & (arr == LIVER)) / (np.sum(back == LIVER) + np.sum(arr == LIVER))
    assert dice > 0.8


# --------------------------------------------------------------------------- files written by Slicer


def test_volume_nrrd_written_by_slicer_reads_back_in_simpleitk(mrml_scene, tmp_path):
    rot = random_rotation(np.random.default_rng(13))
    img = make_image(shape_zyx=(5, 6, 7), spacing=(0.6, 0.9, 2.7), origin=(-30.5, 12.25, 80.0),
                     direction=rot, dtype=np.int16)
    node = mb.volume_to_node(img, "ct")
    path = str(tmp_path / "ct.nrrd")
    storage = mrml_scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(path)
    assert storage.WriteData(node)
    read = sitk.ReadImage(path)
    assert_same_geometry(read, img)
    assert read.GetPixelID() == img.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read), sitk.GetArrayFromImage(img))


def test_nrrd_written_by_simpleitk_reads_back_in_slicer(mrml_scene, tmp_path):
    rot = random_rotation(np.random.default_rng(17))
    img = make_image(shape_zyx=(4, 5, 6), spacing=(1.2, 0.8, 3.5), origin=(5.0, -7.0, 9.0),
                     direction=rot, dtype=np.float32)
    path = str(tmp_path / "mr.nrrd")
    sitk.WriteImage(img, path)
    node = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "mr")
    storage = mrml_scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(path)
    assert storage.ReadData(node)
    np.testing.assert_allclose(ijk_to_ras_of(node), mb.ijk_to_ras_matrix(img), atol=1e-6)
    back = mb.node_to_volume(node)
    assert_same_geometry(back, img)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))


def test_seg_nrrd_round_trip(mrml_scene, tmp_path):
    rot = random_rotation(np.random.default_rng(19))
    arr = label_array(seed=5)
    img = label_image(arr, direction=rot)
    seg = mb.labels_to_segmentation(img, "organs")
    path = str(tmp_path / "organs.seg.nrrd")
    storage = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(path)
    assert storage.WriteData(seg)

    # Slicer reads it back: same names, colours and voxels
    loaded = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "loaded")
    reader = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    reader.SetFileName(path)
    assert reader.ReadData(loaded)
    names = sorted(loaded.GetSegmentation().GetNthSegment(i).GetName()
                   for i in range(loaded.GetSegmentation().GetNumberOfSegments()))
    assert names == sorted(mb._name_and_colour(int(v), LABELS)[0] for v in np.unique(arr) if v)
    np.testing.assert_allclose(segment_by_name(loaded, "liver").GetColor(), LABELS[LIVER][1], atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mb.segmentation_to_labels(loaded, img)), arr)

    # SimpleITK reads the same file on the same physical grid (the file is LPS, like ITK).
    # Slicer may crop the file to the segments' extent: compare where the grids overlap.
    read = sitk.ReadImage(path)
    assert read.GetDimension() == 3
    np.testing.assert_allclose(read.GetSpacing(), img.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(read.GetDirection(), img.GetDirection(), atol=1e-6)
    start = np.array(img.TransformPhysicalPointToContinuousIndex(read.GetOrigin()))
    np.testing.assert_allclose(start, np.round(start), atol=1e-6)
    start = np.round(start).astype(int)
    on_img = sitk.Resample(read, img, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(on_img), arr)
    assert np.all(start >= 0)


# --------------------------------------------------------------------------- subject hierarchy


def test_place_in_study(mrml_scene):
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml_scene)
    mri = mb.volume_to_node(make_image(), "MRI")
    patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient 1")
    study = sh.CreateStudyItem(patient, "Abdomen MRI")
    mri_item = sh.GetItemByDataNode(mri) or sh.CreateItem(study, mri)
    sh.SetItemParent(mri_item, study)

    sct = mb.volume_to_node(make_image(seed=2), "synthetic CT")
    item = mb.place_in_study(sct, mri)
    assert item == sh.GetItemByDataNode(sct)
    assert sh.GetItemParent(item) == study
    assert sh.GetItemLevel(sh.GetItemParent(item)) == slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMLevelStudy()

    liver = mb.labels_to_segmentation(label_image(label_array(ids=(LIVER,))), "liver")
    assert sh.GetItemParent(mb.place_in_study(liver, mri)) == study
    # a node that already has an item elsewhere is moved
    sh.SetItemParent(item, sh.GetSceneItemID())
    assert mb.place_in_study(sct, mri) == item and sh.GetItemParent(item) == study

    # an input with no hierarchy item (headless): both end up at the scene level
    other = mb.volume_to_node(make_image(seed=3), "other")
    out = mb.volume_to_node(make_image(seed=4), "out")
    assert sh.GetItemParent(mb.place_in_study(out, other)) == sh.GetSceneItemID()
