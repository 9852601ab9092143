"""GPU training for CrossModalitySynth: CycleGAN, EssNet, the liver U-Net, the augmentation experiment.

Networks, data and preprocessing come from :mod:`CrossModalitySynthLib`; this package holds the
training loops, configs and export to model bundles.
"""
