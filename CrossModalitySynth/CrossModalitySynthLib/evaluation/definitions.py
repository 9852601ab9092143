"""Names, units and one-line definitions of every number ``cmsynth evaluate`` reports.

They are written into metrics.json and the report's definitions table, so a reader of either
knows exactly what was computed. The computations themselves live in
:mod:`CrossModalitySynthLib.metrics`; these texts summarise its docstrings.
"""

from collections import OrderedDict

# key -> (display name, unit, better, definition)
_DEFS = [
    ("mae", "MAE", "HU", "lower",
     "Mean absolute error sum(|real - synthetic| * m) / sum(m) on raw HU inside the mask m, no clipping "
     "(SynthRAD2023/2025)."),
    ("psnr", "PSNR", "dB", "higher",
     "Both clipped to [-1024, 3000] HU, 10 log10(4024^2 / MSE) with the MSE over mask voxels only "
     "(SynthRAD2023)."),
    ("ssim", "SSIM", "1", "higher",
     "SynthRAD2023 masked 3D SSIM: clip to [-1024, 3000], outside-mask voxels set to -1024, 7-voxel uniform "
     "window, sample covariance, data range 4024; mean of the SSIM map over mask voxels at least 3 voxels "
     "inside the volume border."),
    ("ms_ssim", "MS-SSIM", "1", "higher",
     "SynthRAD2025 masked 3D MS-SSIM: range [-1024, 3071], 5 scales with weights 0.0448 0.2856 0.3001 0.2363 "
     "0.1333, axes shorter than 97 voxels padded by edge replication."),
    ("n_mask_voxels", "mask voxels", "voxels", "",
     "Voxels inside the evaluation mask (the given mask, or the body mask of the real CT: > -500 HU, largest "
     "component, holes filled)."),
    ("fid", "FID", "feature units^2", "lower",
     "Frechet distance |mu_r - mu_s|^2 + Tr(S_r + S_s - 2 (S_r S_s)^1/2) between Gaussians fitted (N-1 "
     "covariance, float64) to per-slice features of the real and synthetic slices; computed per plane, "
     "the score over several planes is their mean (2.5D). Matrix root: scipy sqrtm as pytorch-fid when both "
     "sets have more slices than feature dimensions, else (singular covariances) the exact eigenvalue form "
     "sum sqrt(eig(S_r^1/2 S_s S_r^1/2)) (method 'eigh', recorded per plane). Biased upwards for small N; "
     "comparable only at equal N and with the same extractor."),
    ("kid", "KID", "feature units^2", "lower",
     "Kernel inception distance: unbiased MMD^2 with the kernel (x.y/d + 1)^3 over 100 seeded random subsets of "
     "min(N_real, N_synthetic, 1000) slices; mean and standard deviation over subsets; can be slightly "
     "negative."),
    ("kl_real_synth", "KL(real || synthetic)", "nats", "lower",
     "Kullback-Leibler divergence sum p ln(p/q) of the pooled HU histograms inside the masks, each smoothed by "
     "eps per bin; asymmetric."),
    ("kl_synth_real", "KL(synthetic || real)", "nats", "lower",
     "The same divergence in the other direction."),
    ("js_bits", "Jensen-Shannon divergence", "bits", "lower",
     "KL(p||m)/2 + KL(q||m)/2 with m = (p+q)/2 on the unsmoothed HU histograms; symmetric, 0 (identical) to "
     "1 bit."),
    ("wasserstein", "Wasserstein-1", "HU", "lower",
     "Earth mover's distance between the two binned HU distributions (bin centres; error at most one bin "
     "width)."),
    ("intersection", "histogram intersection", "1", "higher",
     "sum min(p, q) of the normalised HU histograms; 1 = identical."),
    ("spectral_distance", "spectral distance", "decades of power", "lower",
     "Mean |log10 P_real - log10 P_synthetic| over the frequency band, P the mean radial (azimuthally "
     "averaged) log power spectrum of the axial slices in raw HU."),
    ("slope_real", "high-frequency slope (real)", "1", "",
     "Slope of the least-squares line log10 power vs log10 frequency over the band, real slices."),
    ("slope_synth", "high-frequency slope (synthetic)", "1", "closer to real",
     "The same for the synthetic slices: flatter than real = excess high-frequency power (noise, "
     "checkerboard), steeper = over-smoothing."),
    ("dice", "Dice", "1", "higher",
     "2 |A n B| / (|A| + |B|) of predicted and reference label; both empty = 1, one empty = 0."),
    ("iou", "IoU", "1", "higher", "|A n B| / |A u B|; Dice = 2 IoU / (1 + IoU)."),
    ("hd95", "HD95", "mm", "lower",
     "Larger of the two directed 95th percentiles of surface-to-surface distances in mm (voxel spacing "
     "applied; MONAI definition); one mask empty = infinite (null in JSON)."),
    ("msd", "MSD", "mm", "lower",
     "Mean symmetric surface distance in mm: mean of both directions' surface distances pooled."),
    ("mean_hu", "mean", "HU", "", "Mean voxel value inside the mask."),
    ("std_hu", "standard deviation", "HU", "", "Standard deviation of the voxel values inside the mask."),
    ("median_hu", "median", "HU", "", "Median voxel value inside the mask."),
    ("ci95", "95% CI of the mean", "unit of the metric", "",
     "Percentile bootstrap interval of the mean over cases (10 000 resamples of the cases, seed 0); "
     "patients, not slices, are resampled."),
]

DEFINITIONS = OrderedDict(
    (key, {"name": name, "unit": unit, "better": better, "definition": text}) for key, name, unit, better, text in _DEFS
)


def name_of(key: str) -> str:
    return DEFINITIONS[key]["name"] if key in DEFINITIONS else key
