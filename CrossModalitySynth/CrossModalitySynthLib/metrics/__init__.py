"""Evaluation metrics for synthetic images, defined so that numbers match the standard tools.

- :mod:`.paired`: SynthRAD MAE, PSNR, SSIM (2023) and MS-SSIM (2025) of a synthetic CT against
  its real CT, and a body mask helper.
- :mod:`.distribution`: FID and KID on slice features (and the Frechet distance itself).
- :mod:`.features`: slices of volumes per plane and feature extractors (InceptionV3 of the
  standard FID, and cheap deterministic ones that need no weights).
- :mod:`.inception`: the pytorch-fid InceptionV3 network (weights from a local file).
- :mod:`.histogram`: KL, Jensen-Shannon, Wasserstein-1 and intersection of HU histograms.
- :mod:`.spectral`: radial power spectra, their band distance and high-frequency slope.
- :mod:`.segmentation`: Dice, IoU, HD95, HD and mean surface distance in mm.
- :mod:`.statistics`: paired bootstrap CI and Wilcoxon signed-rank test over patients.

torch is only imported when InceptionV3 features are computed.
"""

from .distribution import (
    DistributionReport,
    FIDResult,
    KIDResult,
    distribution_metrics,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    kid_from_features,
)
from .features import (
    PLANES,
    HistogramSpectrumExtractor,
    InceptionExtractor,
    RandomProjectionExtractor,
    extract_slices,
    get_extractor,
    volume_features,
)
from .histogram import (
    HistogramMetrics,
    histogram_intersection,
    histogram_metrics,
    hu_histogram,
    js_divergence,
    kl_divergence,
    wasserstein_binned,
    wasserstein_hu,
)
from .paired import (
    PairedMetrics,
    body_mask,
    mae,
    ms_ssim_synthrad2025,
    paired_metrics,
    psnr,
    ssim_synthrad2023,
)
from .segmentation import SegmentationScores, inplane_outline_distances, multilabel_scores, segmentation_scores
from .spectral import RadialProfile, SpectralComparison, compare_spectra, mean_radial_profile, radial_profile
from .statistics import BootstrapCI, WilcoxonResult, compare_paired, paired_bootstrap_ci, wilcoxon_signed_rank

__all__ = [
    "BootstrapCI",
    "DistributionReport",
    "FIDResult",
    "HistogramMetrics",
    "HistogramSpectrumExtractor",
    "InceptionExtractor",
    "KIDResult",
    "PLANES",
    "PairedMetrics",
    "RadialProfile",
    "RandomProjectionExtractor",
    "SegmentationScores",
    "SpectralComparison",
    "WilcoxonResult",
    "body_mask",
    "compare_paired",
    "compare_spectra",
    "distribution_metrics",
    "extract_slices",
    "feature_statistics",
    "fid_from_features",
    "frechet_distance",
    "get_extractor",
    "histogram_intersection",
    "histogram_metrics",
    "hu_histogram",
    "js_divergence",
    "kid_from_features",
    "kl_divergence",
    "mae",
    "mean_radial_profile",
    "ms_ssim_synthrad2025",
    "multilabel_scores",
    "paired_bootstrap_ci",
    "paired_metrics",
    "psnr",
    "radial_profile",
    "segmentation_scores",
    "inplane_outline_distances",
    "ssim_synthrad2023",
    "volume_features",
    "wasserstein_binned",
    "wasserstein_hu",
    "wilcoxon_signed_rank",
]
