"""Distribution (unpaired) metrics on feature vectors: Frechet distance (FID) and KID.

Features are ``(N, d)`` arrays, one row per image (slice); they come from a feature extractor
(:mod:`.features`: InceptionV3 pool features for the standard FID, or a cheap extractor).

- FID = ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` with means and covariances
  (``N - 1`` normalisation) computed in float64. The matrix square root is
  ``scipy.linalg.sqrtm`` as in pytorch-fid: if its result is not finite, ``eps`` is added to the
  diagonals of both covariances and it is recomputed; an imaginary part is dropped if the
  diagonal's imaginary part is below 1e-3 (an error otherwise).
  ``method="eigh"`` instead uses ``Tr((S1 S2)^(1/2)) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))``,
  which is exact for singular covariances (N <= d); eigenvalues below the rank tolerance
  ``max * d * eps`` count as 0, so the round-off in place of the zero eigenvalues adds nothing.
  ``method="auto"`` (the default of :func:`fid_from_features` and ``cmsynth evaluate``) uses
  ``sqrtm`` when both sets have more samples than dimensions and ``eigh`` when either has
  N <= d: a covariance of N samples has rank at most N - 1, so it is then singular, and
  ``sqrtm`` of the singular product is unreliable: its imaginary part grows with the feature
  values and passes the absolute tolerance (pytorch-fid raises there), and on 2048-d features
  it is slow, while ``eigh`` is exact for a singular positive semi-definite covariance.
  Should ``sqrtm`` still fail with N > d (an ill-conditioned covariance), ``auto`` falls back to
  ``eigh`` with a warning. The method used is recorded in :class:`FIDResult`.
  FID is biased upwards for small N: the result reports N and a warning is issued when
  N <= d (the covariance is then singular).
- KID = unbiased MMD^2 with the polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over
  ``n_subsets`` (100) random subsets of ``subset_size = min(N_real, N_synth, 1000)`` rows drawn
  without replacement from each set (seeded); mean and standard deviation over subsets. It can
  be slightly negative when the distributions agree.
"""

import warnings
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import linalg

from ..errors import InputError


def _features(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError("The {} features must be an (N, d) array; got shape {}.".format(name, arr.shape))
    if arr.shape[0] < 2:
        raise InputError("The {} features have {} row(s); at least 2 are needed.".format(name, arr.shape[0]))
    if not np.isfinite(arr).all():
        raise InputError("The {} features contain NaN or infinite values.".format(name))
    return arr


def _feature_pair(real, synth) -> Tuple[np.ndarray, np.ndarray]:
    a, b = _features(real, "real"), _features(synth, "synthetic")
    if a.shape[1] != b.shape[1]:
        raise InputError("The feature sets differ in dimension: {} vs {}.".format(a.shape[1], b.shape[1]))
    return a, b


def feature_statistics(features) -> Tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and covariance (d, d) with ``N - 1`` normalisation, float64."""
    f = _features(features, "given")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False, ddof=1))


def _rank_clip(w: np.ndarray) -> np.ndarray:
    """Eigenvalues below the rank tolerance ``max(w) * len(w) * eps`` (numpy's matrix_rank) set to 0.

    A singular covariance has round-off eigenvalues of either sign in place of its zeros; their
    square roots would add up (about 3e-8 of the FID for 2048-d features of a few slices)."""
    tol = float(np.max(w, initial=0.0)) * w.size * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


class _SqrtmFailed(ValueError):
    """The matrix square root has a large imaginary part (pytorch-fid raises here too)."""


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
    method: str = "sqrtm",
) -> float:
    """Frechet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``method="sqrtm"`` follows pytorch-fid (``scipy.linalg.sqrtm`` of ``sigma1 @ sigma2``, an
    ``eps`` offset on both diagonals if that is not finite, small imaginary parts dropped);
    ``method="eigh"`` uses the symmetric form, exact for singular covariances.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise InputError(
            "Feature statistics do not match: means {} and {}, covariances {} and {}.".format(
                mu1.shape, mu2.shape, sigma1.shape, sigma2.shape
            )
        )
    diff = mu1 - mu2
    if method == "sqrtm":
        with warnings.catch_warnings():
            # scipy warns about singular products; finiteness is checked just below instead
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm(sigma1.dot(sigma2))
        if not np.isfinite(covmean).all():
            warnings.warn(
                "FID: the product of the covariances is singular; adding {} to their diagonals.".format(eps),
                RuntimeWarning,
                stacklevel=2,
            )
            offset = np.eye(sigma1.shape[0]) * eps
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", linalg.LinAlgWarning)
                covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
        if np.iscomplexobj(covmean):
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
                raise _SqrtmFailed(
                    "FID: imaginary component {:.3g} in the matrix square root.".format(
                        float(np.max(np.abs(covmean.imag)))
                    )
                )
            covmean = covmean.real
        tr_covmean = float(np.trace(covmean))
    elif method == "eigh":
        w1, v1 = np.linalg.eigh(sigma1)
        root1 = (v1 * np.sqrt(_rank_clip(w1))) @ v1.T
        inner = root1 @ sigma2 @ root1
        inner = 0.5 * (inner + inner.T)
        tr_covmean = float(np.sum(np.sqrt(_rank_clip(np.linalg.eigvalsh(inner)))))
    else:
        raise ValueError('method must be "sqrtm" or "eigh", not {!r}'.format(method))
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


@dataclass(frozen=True)
class FIDResult:
    """A Frechet distance with the sample sizes it was computed from."""

    fid: float
    n_real: int
    n_synth: int
    dim: int
    method: str  #: the method used: "sqrtm" or "eigh" (never "auto")
    biased_small_n: bool  #: True when min(N) <= d (singular covariance; FID strongly biased)

    def __float__(self) -> float:
        return self.fid


FID_METHODS = ("auto", "sqrtm", "eigh")


def fid_from_features(real, synth, eps: float = 1e-6, method: str = "auto") -> FIDResult:
    """FID between two feature sets ``(N1, d)`` and ``(N2, d)``; warns when N <= d.

    ``method``: ``"auto"`` (``sqrtm`` when both N > d, else ``eigh``; see the module text),
    ``"sqrtm"`` or ``"eigh"``.
    """
    if method not in FID_METHODS:
        raise ValueError("method must be one of {}, not {!r}".format(", ".join(FID_METHODS), method))
    a, b = _feature_pair(real, synth)
    d = a.shape[1]
    small = min(a.shape[0], b.shape[0]) <= d
    used = ("eigh" if small else "sqrtm") if method == "auto" else method
    if small:
        warnings.warn(
            "FID from N = {} real and {} synthetic samples of dimension {}: N <= d, the covariance is "
            "singular and FID is strongly biased; report N and compare only at equal N.".format(
                a.shape[0], b.shape[0], d
            ),
            UserWarning,
            stacklevel=2,
        )
    mu1, s1 = a.mean(axis=0), np.atleast_2d(np.cov(a, rowvar=False, ddof=1))
    mu2, s2 = b.mean(axis=0), np.atleast_2d(np.cov(b, rowvar=False, ddof=1))
    try:
        value = frechet_distance(mu1, s1, mu2, s2, eps=eps, method=used)
    except _SqrtmFailed as exc:
        if method != "auto":
            raise
        warnings.warn(
            "FID: the matrix square root of the covariance product failed ({}); FID was computed by the "
            "eigenvalue method (eigh) instead.".format(exc),
            RuntimeWarning,
            stacklevel=2,
        )
        used = "eigh"
        value = frechet_distance(mu1, s1, mu2, s2, eps=eps, method=used)
    return FIDResult(value, int(a.shape[0]), int(b.shape[0]), int(d), used, bool(small))


@dataclass(frozen=True)
class KIDResult:
    """Kernel inception distance: mean and standard deviation over subsets."""

    mean: float
    std: float
    n_subsets: int
    subset_size: int
    n_real: int
    n_synth: int
    seed: int

    def __float__(self) -> float:
        return self.mean


def _mmd2_unbiased_poly3(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples with ``k(a, b) = (a.b / d + 1)^3``."""
    m, d = x.shape

    def kernel(a, b):
        k = a @ b.T / d + 1.0
        return k * k * k

    kxx = kernel(x, x)
    kyy = kernel(y, y)
    kxy = kernel(x, y)
    sum_xx = kxx.sum() - np.trace(kxx)
    sum_yy = kyy.sum() - np.trace(kyy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * kxy.sum() / (m * m))


def kid_from_features(
    real,
    synth,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KIDResult:
    """KID (unbiased MMD^2, cubic polynomial kernel) averaged over seeded random subsets."""
    a, b = _feature_pair(real, synth)
    m = int(min(a.shape[0], b.shape[0], subset_size))
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets, dtype=np.float64)
    for i in range(n_subsets):
        ia = rng.choice(a.shape[0], m, replace=False)
        ib = rng.choice(b.shape[0], m, replace=False)
        values[i] = _mmd2_unbiased_poly3(a[ia], b[ib])
    return KIDResult(
        mean=float(values.mean()),
        std=float(values.std()),
        n_subsets=int(n_subsets),
        subset_size=m,
        n_real=int(a.shape[0]),
        n_synth=int(b.shape[0]),
        seed=int(seed),
    )


@dataclass(frozen=True)
class PlaneDistribution:
    """FID (and KID) of one slicing plane."""

    plane: str
    fid: FIDResult
    kid: Optional[KIDResult]


@dataclass(frozen=True)
class DistributionReport:
    """Per-plane results and their mean (the 2.5D score when all three planes are used)."""

    extractor: str
    planes: Tuple[PlaneDistribution, ...]

    @property
    def fid(self) -> float:
        return float(np.mean([p.fid.fid for p in self.planes]))

    @property
    def kid(self) -> Optional[float]:
        if any(p.kid is None for p in self.planes):
            return None
        return float(np.mean([p.kid.mean for p in self.planes]))


def distribution_metrics(
    real_volumes: Sequence,
    synth_volumes: Sequence,
    extractor="histspec",
    planes: Sequence[str] = ("axial",),
    window="ct",
    real_masks: Optional[Sequence] = None,
    synth_masks: Optional[Sequence] = None,
    min_mask_fraction: float = 0.0,
    step: int = 1,
    with_kid: bool = True,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    fid_method: str = "auto",
) -> DistributionReport:
    """FID/KID between the slices of real and synthetic volumes, per plane and averaged.

    ``planes=("axial", "coronal", "sagittal")`` is the 2.5D option: each plane's slices are
    compared separately and :attr:`DistributionReport.fid` is the mean of the three FIDs.
    ``extractor`` is a name (``"inception"``, ``"histspec"``, ``"randproj"``) or an extractor.
    """
    from .features import get_extractor, volume_features

    ex = get_extractor(extractor)
    results = []
    for plane in planes:
        fr = volume_features(real_volumes, ex, plane, window, real_masks, min_mask_fraction, step)
        fs = volume_features(synth_volumes, ex, plane, window, synth_masks, min_mask_fraction, step)
        fid = fid_from_features(fr, fs, method=fid_method)
        kid = kid_from_features(fr, fs, kid_subsets, kid_subset_size, seed) if with_kid else None
        results.append(PlaneDistribution(plane, fid, kid))
    return DistributionReport(getattr(ex, "name", type(ex).__name__), tuple(results))
