"""A simple check that a volume looks like the modality the user said it is.

CT in Hounsfield units has a signature MRI lacks: air around the body near -1000 HU (often
-1024 or lower padding outside the scanned circle), soft tissue near 0-60 HU, negative values,
integer values. MRI is non-negative on an arbitrary scale with dark (near 0) air. The check is a
heuristic that catches a swapped input (a CT given as MRI or the reverse); this module only
guesses and words the finding: the callers refuse the volume unless ``--force`` is given (then
the sentence becomes a warning).
"""

from typing import NamedTuple, Optional

import numpy as np
import SimpleITK as sitk

#: At most about this many voxels (an even stride through the volume) are looked at: the rules
#: are fractions of at least 0.1 %, which a quarter of a million samples measure closely enough.
MAX_SAMPLES = 250_000


class ModalityGuess(NamedTuple):
    modality: str  # "CT", "MR" or "unknown"
    reason: str


def normalise_modality(modality: str, error=ValueError, what: str = "modality") -> str:
    """``"MR"`` for "MR" or "MRI", ``"CT"`` for "CT" (any case, spaces around ignored); anything
    else raises ``error`` (an exception class) with the sentence "Unknown {what} ...; use 'CT' or 'MR'."."""
    m = str(modality).strip().upper()
    if m in ("MR", "MRI"):
        return "MR"
    if m == "CT":
        return "CT"
    raise error(f"Unknown {what} {modality!r}; use 'CT' or 'MR'.")


def guess_modality(image) -> ModalityGuess:
    """Guess ``"CT"``, ``"MR"`` or ``"unknown"`` from the intensity signature, with the reason.

    ``image`` is a SimpleITK image or a numpy array. Rules (on finite voxels):
    CT when the minimum is below -500, at least 1 % of voxels are at or below -850 (air or
    scanner padding) and at least 5 % lie in [-150, 150] HU (fat, water, soft tissue);
    MR when fewer than 0.1 % of voxels are negative; unknown otherwise.
    """
    arr = sitk.GetArrayViewFromImage(image) if isinstance(image, sitk.Image) else np.asarray(image)
    v = arr.ravel()
    v = v[:: max(1, v.size // MAX_SAMPLES)].astype(np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ModalityGuess("unknown", "the volume has no finite voxels")
    vmin, vmax = float(v.min()), float(v.max())
    frac_neg = float(np.mean(v < 0))
    frac_air = float(np.mean(v <= -850))
    frac_soft = float(np.mean((v >= -150) & (v <= 150)))
    integer_like = bool(np.all(v == np.round(v)))
    stats = (
        f"min {vmin:g}, max {vmax:g}, {100 * frac_air:.1f}% of voxels at or below -850, "
        f"{100 * frac_soft:.1f}% in [-150, 150]"
    )
    if vmin < -500 and frac_air >= 0.01 and frac_soft >= 0.05:
        extra = ", integer values" if integer_like else ""
        return ModalityGuess("CT", f"Hounsfield-unit signature: air near -1000 and soft tissue near 0 ({stats}{extra})")
    if frac_neg < 0.001:
        return ModalityGuess(
            "MR",
            f"no negative values and no air near -1000 as a CT in HU would have (min {vmin:g}, max {vmax:g})",
        )
    return ModalityGuess("unknown", f"neither a CT (HU) nor a non-negative MRI signature ({stats})")


def article_name(modality: str) -> str:
    """``"a CT"`` or ``"an MRI"`` for "CT" / "MR" ("MRI")."""
    return "a CT" if normalise_modality(modality) == "CT" else "an MRI"


def modality_mismatch(image, expected: str) -> Optional[ModalityGuess]:
    """The guess when ``image``, given as ``expected`` ("MR"/"MRI" or "CT"), looks like the other
    modality; ``None`` when it matches or the guess is unknown. The one rule every modality check
    uses (model inputs in both directions, ``cmsynth run --reference-ct``, the real volumes of
    ``cmsynth evaluate``); each caller words its own sentence from ``reason``."""
    exp = normalise_modality(expected)
    guess = guess_modality(image)
    if guess.modality == "unknown" or guess.modality == exp:
        return None
    return guess


def warn_if_modality_mismatch(image, expected: str) -> Optional[str]:
    """A one-sentence warning when ``image`` given as ``expected`` ("MR"/"MRI" or "CT") looks
    like the other modality; ``None`` when it matches or the guess is unknown."""
    guess = modality_mismatch(image, expected)
    if guess is None:
        return None
    given = article_name(expected)
    looks = article_name(guess.modality)
    return (
        f"The volume given as {given} looks like {looks} ({guess.reason}); "
        "check that you picked the right volume and direction."
    )
