"""Intensity-histogram distances between real and synthetic volumes (unpaired).

Histograms are counted inside a body mask on a fixed HU range and bin width (defaults
[-1024, 3071] HU, 10 HU bins: edges -1024, -1014, ..., 3076; 410 bins). Values are clipped to
the range first, so voxels beyond it count in the end bins. Several volumes are pooled by
adding their counts. With ``p``, ``q`` the normalised histograms (real, synthetic):

- KL(p || q) = sum p log(p / q), in nats, on smoothed histograms ``(h + eps) / sum(h + eps)``
  (``eps = 1e-10`` per bin, reported); >= 0, 0 only when the histograms agree, asymmetric;
  reported both ways.
- Jensen-Shannon divergence JS = KL(p || m) / 2 + KL(q || m) / 2, ``m = (p + q) / 2``, on the
  unsmoothed histograms; symmetric, 0 <= JS <= ln 2 nats (= 1 bit); reported in nats and bits.
  (``scipy.spatial.distance.jensenshannon`` returns its square root, the JS distance.)
- Wasserstein-1 (earth mover's) distance in HU between the two binned distributions, each bin
  at its centre (``scipy.stats.wasserstein_distance``); its error against the exact value on the
  voxel values is at most one bin width. :func:`wasserstein_hu` gives the exact value.
- Histogram intersection = sum min(p, q), in [0, 1], 1 for identical histograms.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from scipy import special, stats

from ..errors import InputError
from ._inputs import ArrayOrImage, binary, check_pair, to_array

DEFAULT_HU_RANGE = (-1024.0, 3071.0)
DEFAULT_BIN_WIDTH = 10.0
DEFAULT_EPS = 1e-10


@dataclass(frozen=True)
class Histogram:
    """Counts on fixed bins."""

    counts: np.ndarray
    edges: np.ndarray

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[:-1] + self.edges[1:])

    @property
    def probabilities(self) -> np.ndarray:
        total = self.counts.sum()
        if total <= 0:
            raise InputError("The histogram is empty (no voxel inside the mask).")
        return self.counts / total


def histogram_edges(hu_range: Tuple[float, float] = DEFAULT_HU_RANGE, bin_width: float = DEFAULT_BIN_WIDTH) -> np.ndarray:
    """Edges ``lo + k * bin_width``, k = 0 .. ceil((hi - lo) / bin_width)."""
    lo, hi = float(hu_range[0]), float(hu_range[1])
    if not hi > lo or not bin_width > 0:
        raise InputError("The histogram range {} and bin width {} are invalid.".format(hu_range, bin_width))
    n = int(np.ceil((hi - lo) / bin_width - 1e-9))
    return lo + bin_width * np.arange(n + 1, dtype=np.float64)


def _masked_values(volume: ArrayOrImage, mask) -> np.ndarray:
    arr = to_array(volume, "volume")
    if mask is None:
        return arr.ravel()
    check_pair(volume, mask, ("volume", "mask"))
    return arr[binary(mask)]


def hu_histogram(
    volumes: Union[ArrayOrImage, Sequence[ArrayOrImage]],
    masks=None,
    hu_range: Tuple[float, float] = DEFAULT_HU_RANGE,
    bin_width: float = DEFAULT_BIN_WIDTH,
) -> Histogram:
    """Pooled histogram of one or more volumes inside their masks (``None``: all voxels)."""
    if not isinstance(volumes, (list, tuple)):
        volumes = [volumes]
        masks = [masks]
    elif masks is None:
        masks = [None] * len(volumes)
    if len(masks) != len(volumes):
        raise InputError("{} masks were given for {} volumes.".format(len(masks), len(volumes)))
    edges = histogram_edges(hu_range, bin_width)
    counts = np.zeros(len(edges) - 1, dtype=np.float64)
    for vol, m in zip(volumes, masks):
        vals = np.clip(_masked_values(vol, m), edges[0], edges[-1])
        counts += np.histogram(vals, bins=edges)[0]
    return Histogram(counts, edges)


def _pair(p, q) -> Tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p.counts if isinstance(p, Histogram) else p, dtype=np.float64)
    q = np.asarray(q.counts if isinstance(q, Histogram) else q, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise InputError("The histograms must be 1D with the same bins; got shapes {} and {}.".format(p.shape, q.shape))
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise InputError("Histograms must be non-negative and not empty.")
    return p, q


def kl_divergence(p, q, eps: float = DEFAULT_EPS) -> float:
    """KL(p || q) in nats of two histograms (counts or probabilities), each smoothed by ``eps``."""
    p, q = _pair(p, q)
    ps = (p / p.sum() + eps)
    qs = (q / q.sum() + eps)
    ps /= ps.sum()
    qs /= qs.sum()
    return float(np.sum(special.rel_entr(ps, qs)))


def js_divergence(p, q, base: Optional[float] = None) -> float:
    """Jensen-Shannon divergence (natural log, or ``base``, e.g. 2 for bits); no smoothing."""
    p, q = _pair(p, q)
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)
    js = 0.5 * np.sum(special.rel_entr(p, m)) + 0.5 * np.sum(special.rel_entr(q, m))
    js = max(float(js), 0.0)
    if base is not None:
        js /= np.log(base)
    return js


def histogram_intersection(p, q) -> float:
    """sum(min(p, q)) of the normalised histograms, in [0, 1]."""
    p, q = _pair(p, q)
    return float(np.minimum(p / p.sum(), q / q.sum()).sum())


def wasserstein_binned(p: Histogram, q: Histogram) -> float:
    """Wasserstein-1 distance in HU between two histograms on the same bins (bin centres)."""
    if not np.array_equal(p.edges, q.edges):
        raise InputError("The histograms have different bins.")
    pc, qc = _pair(p, q)
    return float(stats.wasserstein_distance(p.centres, p.centres, pc, qc))


def wasserstein_hu(real: ArrayOrImage, synth: ArrayOrImage, real_mask=None, synth_mask=None) -> float:
    """Exact Wasserstein-1 distance in HU between the voxel values inside the masks."""
    a = _masked_values(real, real_mask)
    b = _masked_values(synth, synth_mask)
    if a.size == 0 or b.size == 0:
        raise InputError("A mask is empty; no voxel values to compare.")
    return float(stats.wasserstein_distance(a, b))


@dataclass(frozen=True)
class HistogramMetrics:
    """Histogram distances between real and synthetic intensities."""

    kl_real_synth: float  #: KL(real || synth), nats
    kl_synth_real: float  #: KL(synth || real), nats
    js: float  #: Jensen-Shannon divergence, nats (<= ln 2)
    js_bits: float  #: the same in bits (<= 1)
    wasserstein: float  #: HU, binned
    intersection: float  #: [0, 1]
    eps: float
    hu_range: Tuple[float, float]
    bin_width: float
    n_real: int  #: voxels counted
    n_synth: int


def histogram_metrics(
    real,
    synth,
    real_masks=None,
    synth_masks=None,
    hu_range: Tuple[float, float] = DEFAULT_HU_RANGE,
    bin_width: float = DEFAULT_BIN_WIDTH,
    eps: float = DEFAULT_EPS,
) -> HistogramMetrics:
    """All histogram distances between real and synthetic volume(s) inside their masks."""
    hr = hu_histogram(real, real_masks, hu_range, bin_width)
    hs = hu_histogram(synth, synth_masks, hu_range, bin_width)
    return HistogramMetrics(
        kl_real_synth=kl_divergence(hr, hs, eps),
        kl_synth_real=kl_divergence(hs, hr, eps),
        js=js_divergence(hr, hs),
        js_bits=js_divergence(hr, hs, base=2),
        wasserstein=wasserstein_binned(hr, hs),
        intersection=histogram_intersection(hr, hs),
        eps=float(eps),
        hu_range=(float(hu_range[0]), float(hu_range[1])),
        bin_width=float(bin_width),
        n_real=int(hr.counts.sum()),
        n_synth=int(hs.counts.sum()),
    )
