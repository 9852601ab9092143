"""A .seg.nrrd written without Slicer opens in Slicer's real segmentation storage node."""

import numpy as np
import SimpleITK as sitk

from testsupport.images import make_image, random_rotation
from CrossModalitySynthLib.slicer_support import mrml
from CrossModalitySynthLib.io.segnrrd import write_seg_nrrd
from CrossModalitySynthLib.labels import LABELS


def test_seg_nrrd_read_by_slicer_storage_node(tmp_path, mrml_scene):
    import slicer

    rng = np.random.default_rng(0)
    ref = make_image((6, 7, 8), spacing=(0.7, 0.9, 3.0), direction=random_rotation(rng))
    arr = np.zeros((6, 7, 8), np.uint8)
    arr[1:4, 2:5, 1:6] = 1
    arr[4:6, 0:2, 6:8] = 4
    lab = sitk.GetImageFromArray(arr)
    lab.CopyInformation(ref)
    path = str(tmp_path / "liver.seg.nrrd")
    write_seg_nrrd(lab, path)

    node = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    mrml_scene.AddNode(storage)
    storage.SetFileName(path)
    assert storage.ReadData(node)
    seg = node.GetSegmentation()
    names = sorted(seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments()))
    assert names == sorted([LABELS[1][0], LABELS[4][0]])
    liver = seg.GetSegment(seg.GetSegmentIdBySegmentName("liver"))
    np.testing.assert_allclose(liver.GetColor(), LABELS[1][1], atol=1e-3)
    back = mrml.segmentation_to_labels(node, lab)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), arr)
