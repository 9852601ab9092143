"""A smooth random deformation of the reference anatomy, defined in physical space.

The anatomy is evaluated at ``q = p + u(p)`` for a physical point ``p`` (mm, LPS), where ``u``
is a sum of a few low-frequency sinusoids per component. Because ``u`` is an analytic function
of the physical position, any grid (oblique or not, any resolution) sees the same patient.
Wavelengths are 140-360 mm and amplitudes are limited so that ``|du/dp| < 0.35``: the map stays
one-to-one and organs bend and bulge by a few millimetres to about a centimetre.
"""

from typing import Optional

import numpy as np


class Deformation:
    """``u(p) = sum_k A[k, c] * sin(2 pi w_k . p + phi_k)`` for c in x, y, z (mm)."""

    def __init__(self, wavevectors: np.ndarray, phases: np.ndarray, amplitudes: np.ndarray):
        self.wavevectors = np.asarray(wavevectors, dtype=float).reshape(-1, 3)  # cycles / mm
        self.phases = np.asarray(phases, dtype=float).reshape(-1)
        self.amplitudes = np.asarray(amplitudes, dtype=float).reshape(-1, 3)  # mm

    @classmethod
    def identity(cls) -> "Deformation":
        return cls(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3)))

    @classmethod
    def random(cls, rng: np.random.Generator, n_modes: int = 6, max_amplitude_mm: float = 9.0,
               max_gradient: float = 0.35) -> "Deformation":
        """Random modes: directions uniform on the sphere, wavelengths 140-360 mm."""
        dirs = rng.normal(size=(n_modes, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        wavelengths = rng.uniform(140.0, 360.0, size=n_modes)
        wv = dirs / wavelengths[:, None]
        phases = rng.uniform(0.0, 2 * np.pi, size=n_modes)
        amps = rng.normal(size=(n_modes, 3))
        # bound the displacement and the gradient (sum of |A| |2 pi w| per component)
        per_comp = np.abs(amps).sum(axis=0)
        amps *= max_amplitude_mm / max(per_comp.max(), 1e-9)
        grad = (np.abs(amps) * (2 * np.pi / wavelengths)[:, None]).sum(axis=0).max()
        if grad > max_gradient:
            amps *= max_gradient / grad
        return cls(wv, phases, amps)

    @property
    def max_displacement(self) -> float:
        """An upper bound of ``|u(p)|`` in mm over all space."""
        return float(np.linalg.norm(np.abs(self.amplitudes).sum(axis=0)))

    def displacement(self, points: np.ndarray) -> np.ndarray:
        """``u`` at ``points`` of shape (..., 3), float64 mm; returns the same shape."""
        pts = np.asarray(points, dtype=float)
        out = np.zeros_like(pts)
        if len(self.phases) == 0:
            return out
        arg = 2 * np.pi * (pts @ self.wavevectors.T) + self.phases  # (..., K)
        out += np.sin(arg) @ self.amplitudes
        return out

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """The deformed reference position ``q = p + u(p)``."""
        pts = np.asarray(points, dtype=float)
        return pts + self.displacement(pts)

    def to_dict(self) -> dict:
        return {"modes": int(len(self.phases)), "max_displacement_mm": round(self.max_displacement, 3)}


def maybe(deformation: Optional[Deformation]) -> Deformation:
    return deformation if deformation is not None else Deformation.identity()
