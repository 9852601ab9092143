"""One synthetic patient: random organ parameters + smooth deformation -> ordered components.

:meth:`Anatomy.random` draws everything from a :class:`numpy.random.SeedSequence`, split into
independent streams (shape, deformation, bowel, lesions), so switching lesions off, or asking for
an oblique grid, leaves every other structure of the patient unchanged.

Painting order (later over earlier): body (subcutaneous fat, muscle wall, visceral fat), back
muscles, ribs, thorax (diaphragm, mediastinal fat, heart, lungs), colon, small bowel, stomach,
liver (with hepatic / portal vessels and lesions), spleen, kidneys, aorta, IVC, spine.
"""

from typing import List

import numpy as np

from .components import Component
from .deformation import Deformation
from .gut import Stomach, gut_components, random_colon, random_small_bowel
from .organs import (
    GreatVessels,
    Kidney,
    Lesion,
    Liver,
    Spleen,
    kidney_component,
    liver_components,
    random_hepatic_vessels,
    random_lesions,
    spleen_component,
    vessels_components,
)
from .trunk import Spine, Trunk, spine_component, trunk_components


class Anatomy:
    """The components of one patient in painting order, plus the deformation to apply."""

    def __init__(self, components: List[Component], deformation: Deformation, trunk: Trunk, spine: Spine,
                 liver: Liver, spleen: Spleen, kidneys: List[Kidney], lesions: List[Lesion]):
        self.components = components
        self.deformation = deformation
        self.trunk = trunk
        self.spine = spine
        self.liver = liver
        self.spleen = spleen
        self.kidneys = kidneys
        self.lesions = lesions

    @classmethod
    def random(cls, seed: "np.random.SeedSequence", lesions: bool = True, deform: bool = True) -> "Anatomy":
        shape_ss, deform_ss, gut_ss, lesion_ss = seed.spawn(4)
        rng = np.random.default_rng(shape_ss)
        trunk = Trunk.random(rng)
        spine = Spine.random(rng, trunk)
        z_kr = trunk.z_dome_right - float(rng.uniform(108.0, 125.0))
        z_kl = z_kr + float(rng.uniform(8.0, 22.0))
        kidneys = [Kidney.random(rng, -1, spine, z_kr), Kidney.random(rng, +1, spine, z_kl)]
        liver = Liver.random(rng, trunk)
        spleen = Spleen.random(rng, trunk)
        vessels = GreatVessels.random(rng, trunk, spine)
        ribs = dict(
            z_lowest=z_kr + float(rng.uniform(15.0, 35.0)),
            spacing=float(rng.uniform(24.0, 30.0)),
            drop=float(rng.uniform(45.0, 70.0)),
            n_ribs=7,
        )
        hilum = np.array([-0.2 * trunk.cavity_a, -0.1 * trunk.cavity_b_ant, trunk.z_dome_right - 100.0])
        hep = random_hepatic_vessels(rng, liver, vessels.ivc_top, hilum)

        grng = np.random.default_rng(gut_ss)
        colon = random_colon(grng, trunk, z_kr, z_bottom=-260.0)
        stomach = Stomach.random(grng, trunk)

        def inside_cavity(points):
            p = np.asarray(points, dtype=np.float32)
            return -trunk.cavity_sd(p[:, 0], p[:, 1], p[:, 2])

        loops = random_small_bowel(grng, trunk, z_top=z_kr + 5.0, z_bottom=z_kr - 150.0, inside=inside_cavity)

        les: List[Lesion] = []
        if lesions:
            les = random_lesions(np.random.default_rng(lesion_ss), liver, [k.sd for k in kidneys])

        deformation = Deformation.random(np.random.default_rng(deform_ss)) if deform else Deformation.identity()

        comps: List[Component] = trunk_components(trunk, spine, z_psoas_top=z_kr + 20.0, ribs=ribs)
        comps += gut_components(colon, loops, stomach)
        comps += liver_components(liver, hep, les)
        comps.append(spleen_component(spleen))
        comps += [kidney_component(k) for k in kidneys]
        comps += vessels_components(vessels)
        comps.append(spine_component(spine))
        return cls(comps, deformation, trunk, spine, liver, spleen, kidneys, les)

    def summary(self) -> dict:
        """Parameters worth recording in case.json (mm)."""
        t = self.trunk
        return {
            "body_half_width_mm": round(t.a0, 1),
            "subcutaneous_fat_mm": round(t.fat_lat, 1),
            "diaphragm_dome_right_z_mm": round(t.z_dome_right, 1),
            "deformation": self.deformation.to_dict(),
        }
