"""SynthRAD paired metrics: identities, and equality with scikit-image configured as SynthRAD does."""

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.metrics import paired
from CrossModalitySynthLib.metrics.paired import (
    body_mask,
    mae,
    ms_ssim_synthrad2025,
    paired_metrics,
    psnr,
    ssim_synthrad2023,
)


def _ball(shape, centre, radius):
    zz, yy, xx = np.indices(shape)
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius ** 2


@pytest.fixture(scope="module")
def case():
    """Random CT-like volume with values beyond [-1024, 3000], a noisy synthetic CT, a ball mask."""
    rng = np.random.default_rng(7)
    shape = (18, 22, 26)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    ct = -1100.0 + 4700.0 * (smooth - smooth.min()) / (smooth.max() - smooth.min())  # -1100 .. 3600
    sct = ct + rng.normal(0.0, 150.0, size=shape)
    mask = _ball(shape, (9, 11, 13), 9)
    return ct, sct, mask


def test_identity_values(case):
    ct, _, mask = case
    assert mae(ct, ct, mask) == 0.0
    assert psnr(ct, ct, mask) == float("inf")
    assert ssim_synthrad2023(ct, ct, mask) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim_synthrad2025(ct, ct, mask) == pytest.approx(1.0, abs=1e-12)


def test_mae_matches_synthrad_formula(case):
    ct, sct, mask = case
    m = mask.astype(float)
    ref = np.sum(np.abs(ct * m - sct * m)) / m.sum()
    assert mae(ct, sct, mask) == pytest.approx(ref, rel=1e-12)
    # raw HU: clipping would change it, since ct reaches beyond 3000 HU
    clipped = np.sum(np.abs(np.clip(ct, -1024, 3000) - np.clip(sct, -1024, 3000)) * m) / m.sum()
    assert abs(ref - clipped) > 1e-3


def test_psnr_matches_skimage(case):
    ct, sct, mask = case
    ref = peak_signal_noise_ratio(
        np.clip(ct, -1024, 3000)[mask], np.clip(sct, -1024, 3000)[mask], data_range=4024
    )
    assert psnr(ct, sct, mask) == pytest.approx(ref, rel=1e-12)


def test_ssim_matches_skimage_as_synthrad2023(case):
    ct, sct, mask = case
    gt = np.where(mask, np.clip(ct, -1024, 3000), -1024.0) + 1024.0
    pr = np.where(mask, np.clip(sct, -1024, 3000), -1024.0) + 1024.0
    _, smap = structural_similarity(
        gt, pr, win_size=7, use_sample_covariance=True, gaussian_weights=False, data_range=4024, full=True
    )
    ref = crop(smap, 3)[crop(mask, 3)].mean(dtype=np.float64)
    ours = ssim_synthrad2023(ct, sct, mask)
    assert ours == pytest.approx(ref, abs=1e-10)
    assert ours < 0.999


def test_ms_ssim_single_scale_equals_masked_ssim(case):
    """One scale of weight 1 and no padding: the l*c*s map is SSIM where all terms are >= 0."""
    ct, sct, mask = case
    gt = np.where(mask, np.clip(ct, -1024, 3071), -1024.0) + 1024.0
    pr = np.where(mask, np.clip(sct, -1024, 3071), -1024.0) + 1024.0
    _, smap = structural_similarity(gt, pr, win_size=7, use_sample_covariance=True, data_range=4095, full=True)
    assert smap.min() > 0  # so the clipping of l, c, s at 0 does not act
    ref = crop(smap, 3)[crop(mask, 3)].mean(dtype=np.float64)
    ours = ms_ssim_synthrad2025(ct, sct, mask, weights=(1.0,), min_size=0)
    assert ours == pytest.approx(ref, abs=1e-10)


def _ms_ssim_reference(ct, sct, mask, weights=(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)):
    """Independent re-statement of the SynthRAD2025 recipe with other primitives (fftconvolve,
    skimage crop, SSIM components written out)."""
    from scipy.signal import fftconvolve

    lo, hi = -1024.0, 3071.0
    r = hi - lo
    x = np.where(mask, np.clip(ct, lo, hi), lo) - lo
    y = np.where(mask, np.clip(sct, lo, hi), lo) - lo
    m = mask.astype(float)
    pads = [((97 - s) // 2, 97 - s - (97 - s) // 2) if s < 97 else (0, 0) for s in x.shape]
    x, y, m = (np.pad(v, pads, mode="edge") for v in (x, y, m))
    vals = []
    for w in weights:
        f = lambda v: ndimage.uniform_filter(v, 7)  # noqa: E731
        ux, uy = f(x), f(y)
        k = 343 / 342
        vx, vy, vxy = k * (f(x * x) - ux ** 2), k * (f(y * y) - uy ** 2), k * (f(x * y) - ux * uy)
        c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
        sx, sy = np.sqrt(np.maximum(vx, 0)), np.sqrt(np.maximum(vy, 0))
        lum = np.maximum((2 * ux * uy + c1) / (ux ** 2 + uy ** 2 + c1), 0)
        con = np.maximum((2 * sx * sy + c2) / (vx + vy + c2), 0)
        st = np.maximum((vxy + c2 / 2) / (sx * sy + c2 / 2), 0)
        smap = (lum * con * st) ** w
        vals.append(crop(smap, 3)[crop(m, 3).astype(bool)].mean())
        box = np.ones((2, 2, 2)) / 8
        x, y = fftconvolve(x, box, mode="same")[::2, ::2, ::2], fftconvolve(y, box, mode="same")[::2, ::2, ::2]
        m = m[::2, ::2, ::2]
    return float(np.prod(np.clip(vals, 0, 1)))


def test_ms_ssim_matches_reference_recipe(case):
    ct, sct, mask = case
    ours = ms_ssim_synthrad2025(ct, sct, mask)
    assert ours == pytest.approx(_ms_ssim_reference(ct, sct, mask), abs=1e-9)
    assert 0.0 < ours < 1.0


def test_ms_ssim_decreases_with_noise(case):
    ct, _, mask = case
    rng = np.random.default_rng(1)
    low = ms_ssim_synthrad2025(ct, ct + rng.normal(0, 30, ct.shape), mask)
    high = ms_ssim_synthrad2025(ct, ct + rng.normal(0, 400, ct.shape), mask)
    assert 1.0 > low > high


def test_sitk_inputs_equal_numpy_and_grid_checked(case):
    ct, sct, mask = case

    def img(a):
        i = sitk.GetImageFromArray(a.astype(np.float32))
        i.SetSpacing((0.8, 0.9, 2.0))
        i.SetOrigin((1.0, 2.0, 3.0))
        return i

    ict, isct, imask = img(ct), img(sct), img(mask.astype(np.uint8))
    ct32, sct32 = ct.astype(np.float32), sct.astype(np.float32)
    res = paired_metrics(ict, isct, imask, with_ms_ssim=False)
    assert res.mae == pytest.approx(mae(ct32, sct32, mask), rel=1e-12)
    assert res.ssim == pytest.approx(ssim_synthrad2023(ct32, sct32, mask), rel=1e-12)
    assert res.mask_source == "given" and res.n_mask_voxels == int(mask.sum())

    moved = img(sct)
    moved.SetOrigin((1.0, 2.0, 3.5))
    with pytest.raises(InputError, match="not on the CT's grid"):
        mae(ict, moved, imask)
    with pytest.raises(InputError, match="differ in shape"):
        mae(ct, sct[:-1], mask[:-1])
    with pytest.raises(InputError, match="empty"):
        mae(ct, sct, np.zeros_like(mask))


def test_body_mask_fills_cavities_and_drops_table():
    shape = (20, 40, 40)
    ct = np.full(shape, -1000.0)
    body = np.zeros(shape, bool)
    zz, yy, xx = np.indices(shape)
    body |= ((yy - 18) / 12.0) ** 2 + ((xx - 20) / 15.0) ** 2 <= 1.0
    ct[body] = 40.0
    gas = ((zz - 10) ** 2 + (yy - 18) ** 2 + (xx - 20) ** 2) <= 9  # enclosed bowel gas
    ct[gas] = -950.0
    lung = (zz < 6) & (((yy - 18) / 5.0) ** 2 + ((xx - 14) / 4.0) ** 2 <= 1.0)  # touches the top border
    ct[lung] = -850.0
    ct[:, 35:37, 5:35] = 200.0  # table, not connected
    m = body_mask(ct)
    assert m[gas].all() and m[lung].all() and m[body].all()
    assert not m[:, 35:37, 5:35].any()
    assert not m[0, 0, 0]
    # image input gives an image on the same grid
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing((0.7, 0.7, 3.0))
    mi = body_mask(img)
    assert mi.GetSpacing() == img.GetSpacing()
    assert np.array_equal(sitk.GetArrayFromImage(mi) > 0, m)
    # default mask of the metrics is this body mask
    sct = ct + 10.0
    assert mae(ct, sct) == pytest.approx(10.0)
    assert paired_metrics(ct, sct, with_ms_ssim=False).n_mask_voxels == int(m.sum())


def test_small_volume_errors():
    a = np.zeros((5, 10, 10))
    with pytest.raises(InputError, match="SSIM window"):
        ssim_synthrad2023(a, a, "all")
    assert paired.HU_RANGE_SYNTHRAD2025 == (-1024.0, 3071.0)
