"""The one slice runner: a 2D network over the slices of a prepared volume, and the label rule.

The engine (``cmsynth``, Slicer) and training (validation, bundle metrics, augmentation) run
networks through :func:`run_slices` and take labels through :func:`restore_label`. A *slice
function* maps float32 (N, C_in, H, W) to float32 (N, K, H, W): an engine runner (:mod:`.runners`)
or, in training, ``cmsynth_training.validation.slice_fn(network)``.

The label rule: class probabilities (sigmoid / softmax) on the model grid, resampled linearly onto
the input grid by the exact way back of the intensities (``Prepared.restore(kind="probability")``),
label taken there: foreground probability > 0.5 for one or two classes (for two the foreground
alone: the two still sum to 1, so it is the arg-max at half the memory), arg-max for more (a running
best: memory independent of K). Without resampling (an exact reorientation) it is taken on the model
grid. Why and what it measures: docs/engine.md.
"""

from typing import Callable, Optional

import numpy as np
import SimpleITK as sitk

from .cancel import CancelToken
from .progress import ProgressCallback

#: (N, C_in, H, W) float32 -> (N, K, H, W) float32
SliceFn = Callable[[np.ndarray], np.ndarray]


def run_slices(
    net_fn: SliceFn,
    array_czyx: np.ndarray,
    batch_size: int,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelToken] = None,
    stage: str = "slices",
) -> np.ndarray:
    """Run ``net_fn`` on every axial slice of ``array_czyx``, ``batch_size`` slices per call.

    Args:
        net_fn: a slice function (see the module docstring).
        array_czyx: (C, Z, Y, X) float32, e.g. ``Prepared.array``.
        progress: called as ``progress(stage, slices done, Z)`` after every batch.
        cancel: checked before every batch and once after the last (raises ``Cancelled``).

    Returns:
        (K, Z, Y, X) float32 on the same grid.
    """
    c, z, h, w = array_czyx.shape
    batch = max(1, int(batch_size))
    out = None
    for z0 in range(0, z, batch):
        if cancel:
            cancel.check()
        y = np.asarray(net_fn(array_czyx[:, z0:z0 + batch].transpose(1, 0, 2, 3)), dtype=np.float32)
        if out is None:
            out = np.empty((y.shape[1], z) + y.shape[2:], dtype=np.float32)
        out[:, z0:z0 + y.shape[0]] = y.transpose(1, 0, 2, 3)
        if progress:
            progress(stage, min(z0 + batch, z), z)
    if cancel:
        cancel.check()
    return out


def label_from_logits(logits_kzyx: np.ndarray) -> np.ndarray:
    """The label rule on one grid: (K, Z, Y, X) logits -> (Z, Y, X) uint8 (K = 1: logit > 0, i.e.
    sigmoid > 0.5; else arg-max, ties to the lower class)."""
    if logits_kzyx.shape[0] == 1:
        return (logits_kzyx[0] > 0).astype(np.uint8)
    return np.argmax(logits_kzyx, axis=0).astype(np.uint8)


def class_probabilities(logits_kzyx: np.ndarray) -> np.ndarray:
    """(K, Z, Y, X) logits -> float32 probabilities: (1, Z, Y, X) foreground for K = 1 (sigmoid) and
    K = 2 (softmax of two = sigmoid of the difference), (K, Z, Y, X) softmax for K > 2."""
    a = np.asarray(logits_kzyx, dtype=np.float32)
    if a.shape[0] <= 2:
        d = a[0] if a.shape[0] == 1 else a[1] - a[0]
        return (0.5 * (1.0 + np.tanh(0.5 * d)))[None].astype(np.float32)  # sigmoid without overflow
    e = np.exp(a - a.max(axis=0, keepdims=True))
    return (e / e.sum(axis=0, keepdims=True)).astype(np.float32)


def restore_label(prepared, logits_kzyx: np.ndarray) -> sitk.Image:
    """The label (UInt8) on the input's exact grid from (K, Z, Y, X) logits on ``prepared``'s model
    grid, by the label rule of the module docstring. Outside the model grid's field of view
    (cropping only) the label is 0."""
    if not prepared.resampled:  # an exact reorientation: no interpolation, the label is the same on either grid
        return sitk.Cast(prepared.restore(label_from_logits(logits_kzyx), kind="label"), sitk.sitkUInt8)
    probs = class_probabilities(logits_kzyx)
    if probs.shape[0] == 1:
        on_input = prepared.restore(probs[0], kind="probability")
        label = (sitk.GetArrayViewFromImage(on_input) > 0.5).astype(np.uint8)
    else:
        for k in range(probs.shape[0]):
            on_input = prepared.restore(probs[k], kind="probability")
            p = sitk.GetArrayFromImage(on_input)
            if k == 0:
                best, label = p, np.zeros(p.shape, dtype=np.uint8)
                continue
            better = p > best
            best[better] = p[better]
            label[better] = k
    out = sitk.GetImageFromArray(label)
    out.CopyInformation(on_input)  # computed voxel for voxel on the input grid
    return out

