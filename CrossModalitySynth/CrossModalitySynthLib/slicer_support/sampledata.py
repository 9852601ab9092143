"""The phantom sample data registered in Slicer's Sample Data module.

The samples are cases of the project's digital phantom, made by ``cmsynth phantom`` and published
as release assets of the repository (they are not stored in the repository)::

    cmsynth phantom --out sample --size small --seed 0     # "small": 64 x 64 x 28 MRI, 96 x 96 x 48 CT
    cmsynth phantom --out sample --size chaos --seed 0     # "chaos": 256 x 256 x ~35 MRI, 512 x 512 x ~90 CT

:func:`build_sample_files` runs exactly that and copies the files under their release names
(``cmsynth-phantom-<size>-seed<seed>-<file>``); the phantom is deterministic, so the sha256 of every
file is known in advance (:data:`SAMPLE_SETS`) and Sample Data verifies each download against it.
To publish: run ``build_sample_files`` for both sizes, upload the files to the release tagged
:data:`RELEASE_TAG` (``gh release upload sample-data-v1 FILES...``).

Offline: the same command writes byte-identical files; load them with "Add Data", or copy them
under their release names into Slicer's cache folder (Application settings > Cache), where Sample
Data finds them, checks the sha256 and does not download anything.
"""

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..registry import sha256_of

REPOSITORY = "https://github.com/CrossModalitySynth/SlicerCrossModalitySynth"
RELEASE_TAG = "sample-data-v1"
BASE_URL = f"{REPOSITORY}/releases/download/{RELEASE_TAG}/"
CATEGORY = "CrossModalitySynth"
SEED = 0

# (size, phantom file) -> sha256 of the file written by `cmsynth phantom --size SIZE --seed 0`
CHECKSUMS: Dict[Tuple[str, str], str] = {
    ("small", "t1_in.nii.gz"): "07d8c230859c3f859240e077c1dad57878b48c304cb7577a93daa722eb2dab6e",
    ("small", "t1_opp.nii.gz"): "dc4c08edd12f91430d92d1e9411165e98c58a8b5f2ef87e8ab380d7adda63f72",
    ("small", "t2.nii.gz"): "7a250c4dc2dbbf99fc480ef513023871e5521b90644173c8fcb2aa820379850b",
    ("small", "ct.nii.gz"): "fe2f885c9cbc5d211ffd3f3cb0eb16cdb87d78475349c19cd239c8c11474556e",
    ("small", "ct_on_mr.nii.gz"): "b338642554b42417489293670457fd1ababe4b99b2dd3e6faf2d0707bd501728",
    ("chaos", "t1_in.nii.gz"): "152ed0d240e33fd885d8b260046fcdd6dc560bb02f55f08f6cc0b020f16e4a0a",
    ("chaos", "t1_opp.nii.gz"): "eb9fbe807eff381bc79d94fced6bd0765ec93e3f402c8444a3035f19e6044189",
    ("chaos", "t2.nii.gz"): "e0c945288e7d3f6ab6912b08bd8e502163a7236c7473fb9ac2f5eed81e5258e8",
    ("chaos", "ct.nii.gz"): "6087b2176228c600b63dde1d5030376fa5320eda9868a88bc7bdd6723034de9c",
    ("chaos", "ct_on_mr.nii.gz"): "4ca76b746c668db20fadc769b780fcc8de4188f7df10c2fd8341a3d54a87875e",
}

NODE_SUFFIX = {
    "t1_in.nii.gz": "T1 in-phase",
    "t1_opp.nii.gz": "T1 opposed-phase",
    "t2.nii.gz": "T2",
    "ct.nii.gz": "CT",
    "ct_on_mr.nii.gz": "CT on MRI grid",
}


@dataclass(frozen=True)
class SampleSet:
    """One entry of the Sample Data module (one or more files loaded together)."""

    name: str  #: sample name shown in Sample Data
    size: str  #: phantom size ("small" or "chaos")
    files: Tuple[str, ...]  #: phantom file names
    thumbnail: str  #: file in Resources/Icons

    def asset_names(self) -> List[str]:
        return [asset_name(self.size, f) for f in self.files]

    def urls(self) -> List[str]:
        return [BASE_URL + a for a in self.asset_names()]

    def checksums(self) -> List[str]:
        return ["SHA256:" + CHECKSUMS[(self.size, f)] for f in self.files]

    def node_names(self) -> List[str]:
        prefix = "Phantom" if self.size == "small" else "Phantom CHAOS-like"
        return [f"{prefix} {NODE_SUFFIX[f]}" for f in self.files]


SAMPLE_SETS: Tuple[SampleSet, ...] = (
    SampleSet("Phantom abdomen MRI (T1 in/opposed, T2)", "small", ("t1_in.nii.gz", "t1_opp.nii.gz", "t2.nii.gz"),
              "CMSynthPhantomMRI.png"),
    SampleSet("Phantom abdomen CT", "small", ("ct.nii.gz",), "CMSynthPhantomCT.png"),
    SampleSet("Phantom CT on the MRI grid (reference)", "small", ("ct_on_mr.nii.gz",), "CMSynthPhantomCT.png"),
    SampleSet("Phantom CHAOS-like MRI (T1 in/opposed, T2)", "chaos", ("t1_in.nii.gz", "t1_opp.nii.gz", "t2.nii.gz"),
              "CMSynthPhantomMRI.png"),
    SampleSet("Phantom CHAOS-like CT", "chaos", ("ct.nii.gz",), "CMSynthPhantomCT.png"),
)


def asset_name(size: str, phantom_file: str) -> str:
    """Release asset (and Sample Data cache) name of a phantom file."""
    return f"cmsynth-phantom-{size}-seed{SEED}-{phantom_file}"


def build_sample_files(out_dir: str, size: str = "small", files: Optional[Sequence[str]] = None) -> Dict[str, str]:
    """Write the sample files of one size under their release names; returns asset name -> sha256.

    Runs the same code as ``cmsynth phantom --size SIZE --seed 0``.
    """
    from ..phantom import write_cases

    wanted = list(files) if files is not None else sorted({f for (s, f) in CHECKSUMS if s == size})
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".cmsynth-sample-", dir=out_dir)
    try:
        case = write_cases(tmp, n_cases=1, seed=SEED, size=size)[0]
        out = {}
        for f in wanted:
            target = os.path.join(out_dir, asset_name(size, f))
            shutil.copyfile(os.path.join(case, f), target)
            out[os.path.basename(target)] = sha256_of(target)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def registration_arguments(sample: SampleSet, icons_dir: str) -> dict:
    """Keyword arguments of ``SampleData.SampleDataLogic.registerCustomSampleDataSource``."""
    return dict(
        category=CATEGORY,
        sampleName=sample.name,
        thumbnailFileName=os.path.join(icons_dir, sample.thumbnail),
        uris=sample.urls(),
        fileNames=sample.asset_names(),
        nodeNames=sample.node_names(),
        checksums=sample.checksums(),
        loadFiles=[True] * len(sample.files),
    )


def register_sample_data(sample_data_module, icons_dir: str) -> int:
    """Register every :data:`SAMPLE_SETS` entry with Slicer's Sample Data module.

    :param sample_data_module: the ``SampleData`` module (``import SampleData`` inside Slicer).
    :param icons_dir: the module's ``Resources/Icons`` folder (thumbnails).
    :returns: the number of samples registered.
    """
    logic = sample_data_module.SampleDataLogic
    for sample in SAMPLE_SETS:
        logic.registerCustomSampleDataSource(**registration_arguments(sample, icons_dir))
    return len(SAMPLE_SETS)
