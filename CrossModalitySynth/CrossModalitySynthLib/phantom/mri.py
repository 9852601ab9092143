"""MR image formation at 1.5 T: T1 in-/opposed-phase gradient echo and fat-suppressed T2 FSE.

Signal model (per tissue, water and fat compartments separately):

- T1 dual echo, 2D spoiled gradient echo (like CHAOS T1-DUAL), TR 150 ms, flip 70 degrees:
  ``W(TE) = PD (1 - ff) S(T1w) exp(-TE / T2*w) k_flow`` and
  ``F(TE) = PD ff S(T1fat) exp(-TE / T2*fat)`` with the Ernst steady state
  ``S(T1) = sin(a) (1 - E1) / (1 - cos(a) E1)``, ``E1 = exp(-TR / T1)``.
  Fat is one spectral peak 3.4 ppm (217 Hz at 1.5 T) below water, so the voxel's signal is
  ``|W + F exp(i 2 pi df TE)|``: opposed phase at TE 2.3 ms (``~|W - F|``), in phase at
  TE 4.6 ms (``~|W + F|``). Because W and F are summed over the tissues in a voxel *before*
  the magnitude, voxels that mix a water tissue and fat cancel in opposed phase (India-ink
  edges) and fatty tissue (steatotic liver, marrow) darkens.
- T2: single-shot / fast spin echo with SPIR-like fat suppression (like CHAOS T2-SPIR),
  TR 1800 ms, effective TE 85 ms: ``PD (1 - ff) (1 - exp(-TR/T1)) exp(-TE/T2) k_flow`` plus the
  fat term scaled by the residual ``fat_suppression`` (10 %). Fluid is bright, liver dark,
  spleen brighter than liver, fat dark (suppressed), flowing blood is a flow void.

Acquisition effects: a smooth multiplicative receive-coil bias field (exp of a random quadratic
polynomial in physical position plus brighter anterior and posterior surfaces; the same field
for the T1 pair, another one for T2) and Rician noise (Gaussian noise of standard deviation
``noise_sd`` on the real and imaginary channels, then the magnitude). Signals are in arbitrary
units scaled by ``scale`` (liver ~530 on T1 in-phase), stored as float32.
"""

from dataclasses import asdict, dataclass
from typing import Dict, Tuple

import numpy as np

from ..geometry import Grid
from .tissues import FAT, Tissue

MR_CHANNELS = ("hu", "w_in", "f_in", "w_opp", "f_opp", "t2")


@dataclass(frozen=True)
class Sequences:
    field_t: float = 1.5
    fat_shift_hz: float = 217.0  # 3.4 ppm at 63.9 MHz
    t1_tr_ms: float = 150.0
    t1_flip_deg: float = 70.0
    te_opposed_ms: float = 2.3
    te_in_ms: float = 4.6
    t2_tr_ms: float = 1800.0
    t2_te_ms: float = 85.0
    fat_suppression: float = 0.10  # residual fat signal on T2 (SPIR)
    scale: float = 3000.0
    noise_sd: float = 12.0  # Rician noise sigma, same units as the signal
    bias_amplitude: float = 0.15  # sd of the log-bias polynomial coefficients
    bias: bool = True  # False: no coil bias field (for tests and comparisons)

    def to_dict(self) -> dict:
        return asdict(self)


def _spgr(t1: float, tr: float, flip_deg: float) -> float:
    a = np.deg2rad(flip_deg)
    e1 = np.exp(-tr / max(t1, 1e-6))
    return float(np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1))


def tissue_signals(t: Tissue, seq: Sequences) -> Dict[str, float]:
    """Water / fat compartment signals of one tissue (before bias, scale and noise)."""
    water = t.pd * (1.0 - t.ff)
    fat = t.pd * t.ff
    sw = _spgr(t.t1, seq.t1_tr_ms, seq.t1_flip_deg) * t.t1_flow
    sf = _spgr(FAT["t1"], seq.t1_tr_ms, seq.t1_flip_deg)

    def decay(te, t2s):
        return float(np.exp(-te / max(t2s, 1e-6)))

    t2w = water * (1 - np.exp(-seq.t2_tr_ms / t.t1)) * decay(seq.t2_te_ms, t.t2)
    t2f = fat * seq.fat_suppression * (1 - np.exp(-seq.t2_tr_ms / FAT["t1"])) * decay(seq.t2_te_ms, FAT["t2"])
    return {
        "w_in": water * sw * decay(seq.te_in_ms, t.t2s),
        "f_in": fat * sf * decay(seq.te_in_ms, FAT["t2s"]),
        "w_opp": water * sw * decay(seq.te_opposed_ms, t.t2s),
        "f_opp": fat * sf * decay(seq.te_opposed_ms, FAT["t2s"]),
        "t2": float((t2w + t2f) * t.t2_flow),
    }


def mr_tissue_values(tissues: Dict[str, Tissue], seq: Sequences) -> Dict[str, list]:
    """tissue name -> values of :data:`MR_CHANNELS` (HU first, for the CT rendered on the MR grid)."""
    out = {}
    for name, t in tissues.items():
        s = tissue_signals(t, seq)
        out[name] = [t.hu] + [s[c] for c in MR_CHANNELS[1:]]
    return out


def physical_points(grid: Grid) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Physical x, y, z (mm, float32, each (z, y, x)) of every voxel centre of ``grid``."""
    nx, ny, nz = grid.size
    m = grid.direction_matrix @ np.diag(grid.spacing)
    o = np.asarray(grid.origin, dtype=float)
    i = np.arange(nx, dtype=np.float32)[None, None, :]
    j = np.arange(ny, dtype=np.float32)[None, :, None]
    k = np.arange(nz, dtype=np.float32)[:, None, None]
    out = []
    for r in range(3):
        out.append(np.float32(o[r]) + np.float32(m[r, 0]) * i + np.float32(m[r, 1]) * j + np.float32(m[r, 2]) * k)
    return tuple(np.broadcast_to(a, (nz, ny, nx)) for a in out)


def bias_field(grid: Grid, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Smooth multiplicative field (z, y, x) float32 around 1: exp(random quadratic + coil term).

    Defined in physical space (mm, scaled by 200 mm), so it is smooth whatever the grid.
    """
    x, y, z = physical_points(grid)
    u, v, w = x * np.float32(1 / 200.0), y * np.float32(1 / 200.0), z * np.float32(1 / 200.0)
    c = rng.normal(0.0, amplitude, size=9)
    coil = float(rng.uniform(0.15, 0.35))  # surface coils front and back: brighter near them
    log_b = (c[0] * u + c[1] * v + c[2] * w + c[3] * u * u + c[4] * w * w + c[5] * u * v + c[6] * u * w
             + c[7] * v * w + (coil + 0.5 * c[8]) * v * v)
    return np.exp(log_b).astype(np.float32)


def rician(signal: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise of ``sd`` per channel."""
    re = rng.standard_normal(size=signal.shape, dtype=np.float32)
    re *= np.float32(sd)
    re += signal
    im = rng.standard_normal(size=signal.shape, dtype=np.float32)
    im *= np.float32(sd)
    return np.sqrt(re * re + im * im)


def finish_mr(values: np.ndarray, grid: Grid, seq: Sequences, bias_rng: np.random.Generator,
              noise_rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """From rendered channels (C, z, y, x) to {"t1_in", "t1_opp", "t2"} float32 images."""
    ch = {name: values[i] for i, name in enumerate(MR_CHANNELS)}

    def magnitude(w, f, te_ms):
        cos = np.float32(np.cos(2 * np.pi * seq.fat_shift_hz * te_ms * 1e-3))
        return np.sqrt(np.maximum(w * w + f * f + np.float32(2.0) * cos * w * f, 0.0))

    if seq.bias:
        b1 = bias_field(grid, bias_rng, seq.bias_amplitude) * np.float32(seq.scale)
        b2 = bias_field(grid, bias_rng, seq.bias_amplitude) * np.float32(seq.scale)
    else:
        b1 = b2 = np.float32(seq.scale)
    t1_in = magnitude(ch["w_in"], ch["f_in"], seq.te_in_ms) * b1
    t1_opp = magnitude(ch["w_opp"], ch["f_opp"], seq.te_opposed_ms) * b1
    t2 = ch["t2"] * b2
    return {
        "t1_in": rician(t1_in, seq.noise_sd, noise_rng),
        "t1_opp": rician(t1_opp, seq.noise_sd, noise_rng),
        "t2": rician(t2, seq.noise_sd, noise_rng),
    }
