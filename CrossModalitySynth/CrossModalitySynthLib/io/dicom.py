"""DICOM reading (placeholder interface; hardened in the DICOM work)."""

from typing import List, Optional

import SimpleITK as sitk

from ..errors import InputError


def list_dicom_series(folder: str) -> List[dict]:
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder) or []
    return [{"series_instance_uid": uid} for uid in ids]


def read_dicom_series(folder: str, series: Optional[str] = None) -> sitk.Image:
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder) or []
    if not ids:
        raise InputError(f"{folder} holds no DICOM image series; point to the folder with the .dcm files.")
    uid = series or ids[0]
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    return reader.Execute()


def read_dicom_file(path: str) -> sitk.Image:
    return sitk.ReadImage(path)
