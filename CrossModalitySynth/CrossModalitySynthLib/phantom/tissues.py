"""Per-tissue properties of the phantom: CT attenuation and MR relaxation at 1.5 T.

Units and conventions
---------------------
- ``hu``: CT attenuation in Hounsfield units, portal-venous phase (~70 s after iodinated
  contrast), 120 kVp.
- ``t1``, ``t2``, ``t2s``: longitudinal, transverse (spin-echo) and effective transverse (T2*)
  relaxation times of the tissue's *water* component, in milliseconds, at 1.5 T.
- ``pd``: proton density relative to pure water (0..1).
- ``ff``: signal fat fraction (0..1): the share of ``pd`` that is fat (triglyceride) protons.
  The fat component uses :data:`FAT` relaxation times in every tissue.
- ``t1_flow``, ``t2_flow``: signal factors for flowing blood (flow voids on the T2 fast spin
  echo, partial in-flow saturation on the T1 gradient echo); 1 for static tissue.

Sources (values rounded; where sources differ a mid value was taken):
- de Bazelaire CM et al., Radiology 2004;230:652-659 (1.5 T abdomen: liver T1 586 / T2 46 ms,
  spleen 1057 / 79, renal cortex 966 / 87, renal medulla 1412 / 85, paravertebral muscle
  856 / 27, vertebral marrow 549 / 49, subcutaneous fat 343 / 58).
- Stanisz GJ et al., Magn Reson Med 2005;54:507-512 (1.5 T: blood T1 1441 / T2 290 ms,
  skeletal muscle 1008 / 44, liver 576 / 46).
- CSF T1 ~4000 ms, T2 ~2000 ms; simple hepatic cysts T2 > 500 ms; metastases T2 ~80-120 ms.
- T2* at 1.5 T: liver ~30 ms, spleen ~50, kidney ~60, muscle ~30, fat ~25, lung 1-2 ms,
  cortical bone < 1 ms, vertebral marrow ~10-15 ms (trabecular susceptibility).
- CT (portal-venous phase): air -1000, lung bases -850, fat -120..-80, water / bile / cysts
  0..20, muscle 40..60, liver 100..130, spleen 110..130, renal cortex > 150 with lower medulla,
  aorta / IVC ~150, portal and hepatic veins ~160, trabecular bone 200..300, cortical bone
  700..1200, bowel gas -1000..-900.

The table is versioned (:data:`TISSUE_TABLE_VERSION`, written to ``case.json``); per-case
variation (contrast timing, liver fat) is applied by :func:`case_tissues`.
"""

from dataclasses import asdict, dataclass, replace
from typing import Dict, Optional

import numpy as np

TISSUE_TABLE_VERSION = "1.0"


@dataclass(frozen=True)
class Tissue:
    name: str
    hu: float
    t1: float
    t2: float
    t2s: float
    pd: float
    ff: float = 0.0
    t1_flow: float = 1.0
    t2_flow: float = 1.0

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


# The fat (triglyceride) component shared by all tissues: T1 / T2 / T2* in ms at 1.5 T.
FAT = {"t1": 343.0, "t2": 58.0, "t2s": 25.0}

_T = Tissue
TISSUES: Dict[str, Tissue] = {
    t.name: t
    for t in (
        _T("air", -1000.0, 1.0, 1.0, 1.0, 0.0),
        _T("lung", -850.0, 1200.0, 40.0, 1.5, 0.15),
        _T("subcutaneous_fat", -100.0, 900.0, 40.0, 25.0, 0.95, ff=0.90),
        _T("visceral_fat", -95.0, 900.0, 40.0, 25.0, 0.95, ff=0.88),
        _T("muscle", 55.0, 900.0, 35.0, 28.0, 0.76, ff=0.03),
        _T("liver", 115.0, 586.0, 46.0, 30.0, 0.71, ff=0.03),
        _T("hepatic_vessel", 165.0, 1441.0, 200.0, 60.0, 0.87, t1_flow=0.8, t2_flow=0.25),
        _T("spleen", 120.0, 1057.0, 79.0, 50.0, 0.79),
        _T("kidney_cortex", 180.0, 966.0, 87.0, 60.0, 0.81),
        _T("kidney_medulla", 130.0, 1412.0, 85.0, 50.0, 0.83),
        _T("aorta_blood", 160.0, 1441.0, 250.0, 100.0, 0.87, t1_flow=0.5, t2_flow=0.1),
        _T("ivc_blood", 140.0, 1441.0, 180.0, 60.0, 0.87, t1_flow=0.7, t2_flow=0.15),
        _T("heart", 125.0, 1200.0, 100.0, 40.0, 0.82, t1_flow=0.7, t2_flow=0.3),
        _T("cortical_bone", 1000.0, 250.0, 1.0, 0.5, 0.15),
        _T("trabecular_bone", 250.0, 1000.0, 50.0, 12.0, 0.70, ff=0.45),
        _T("intervertebral_disc", 90.0, 1100.0, 110.0, 40.0, 0.85),
        _T("csf", 15.0, 4000.0, 2000.0, 200.0, 1.0),
        _T("bowel_wall", 85.0, 900.0, 60.0, 30.0, 0.80),
        _T("bowel_content", 20.0, 2000.0, 300.0, 60.0, 0.90),
        _T("bowel_gas", -950.0, 1.0, 1.0, 1.0, 0.0),
        _T("liver_cyst", 8.0, 3000.0, 800.0, 150.0, 0.97),
        _T("liver_metastasis", 55.0, 1100.0, 90.0, 40.0, 0.82),
    )
}


def case_tissues(rng: np.random.Generator, liver_fat_fraction: Optional[float] = None) -> Dict[str, Tissue]:
    """The tissue table of one case: literature values with plausible per-patient variation.

    Varies contrast enhancement (liver, spleen, kidneys, vessels: portal-venous timing), the
    liver fat fraction (1-8 %, or ``liver_fat_fraction`` if given; liver HU drops by ~1 HU per
    percent fat) and fat / muscle HU.
    """
    t = dict(TISSUES)
    enh = float(rng.uniform(0.9, 1.1))  # contrast timing / dose
    liver_ff = float(rng.uniform(0.01, 0.08))
    if liver_fat_fraction is not None:
        liver_ff = float(np.clip(liver_fat_fraction, 0.0, 1.0))
    liver_base = float(rng.uniform(112.0, 125.0))
    t["liver"] = replace(t["liver"], hu=liver_base - 100.0 * liver_ff, ff=liver_ff)
    t["spleen"] = replace(t["spleen"], hu=float(rng.uniform(112.0, 128.0)))
    t["kidney_cortex"] = replace(t["kidney_cortex"], hu=180.0 * enh)
    t["kidney_medulla"] = replace(t["kidney_medulla"], hu=130.0 * enh)
    t["aorta_blood"] = replace(t["aorta_blood"], hu=160.0 * enh)
    t["ivc_blood"] = replace(t["ivc_blood"], hu=140.0 * enh)
    t["hepatic_vessel"] = replace(t["hepatic_vessel"], hu=165.0 * enh)
    t["subcutaneous_fat"] = replace(t["subcutaneous_fat"], hu=float(rng.uniform(-110.0, -90.0)))
    t["visceral_fat"] = replace(t["visceral_fat"], hu=float(rng.uniform(-105.0, -85.0)))
    t["muscle"] = replace(t["muscle"], hu=float(rng.uniform(45.0, 60.0)))
    return t
