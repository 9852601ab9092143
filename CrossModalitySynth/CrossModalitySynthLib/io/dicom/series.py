"""Grouping scanned headers into series (echo split, singleton merge), listing and selecting one."""

import os
import shlex
from typing import Dict, List, Optional

from ...errors import InputError
from .types import _Header, _Series


def _echo_key(te: Optional[float]) -> Optional[float]:
    return None if te is None else round(te, 3)


def _fallback_key(h: _Header) -> tuple:
    """What tells series apart when a file has no SeriesInstanceUID: description, number, modality
    and geometry (orientation, matrix, pixel spacing); the echo time is split later, as for UIDs."""
    return (
        h.description,
        h.series_number,
        h.modality,
        None if h.orientation is None else tuple(round(v, 3) for v in h.orientation),
        h.rows,
        h.columns,
        None if h.pixel_spacing is None else tuple(round(v, 4) for v in h.pixel_spacing),
    )


def _sort_key(hs: List[_Header]) -> tuple:
    first = hs[0]
    return (first.series_number is None, first.series_number or 0, first.description, min(h.path for h in hs))


def _group_series(headers: List[_Header], folder: str) -> List[_Series]:
    """SeriesInstanceUID groups, split by echo time, with per-file-UID singletons merged.

    Files without a SeriesInstanceUID (missing or empty) are grouped by :func:`_fallback_key`
    instead and get the ids ``nouid-1``, ``nouid-2`` ... (in SeriesNumber order), which
    ``--series`` accepts like any other id.
    """
    by_uid: Dict[str, List[_Header]] = {}
    no_uid: Dict[tuple, List[_Header]] = {}
    for h in headers:
        if h.series_uid.strip():
            by_uid.setdefault(h.series_uid, []).append(h)
        else:
            no_uid.setdefault(_fallback_key(h), []).append(h)
    groups = [(uid, uid, hs) for uid, hs in by_uid.items()]
    for k, hs in enumerate(sorted(no_uid.values(), key=_sort_key), start=1):
        groups.append((f"nouid-{k}", "", hs))
    series: List[_Series] = []
    singletons: List[_Header] = []
    for gid, uid, hs in groups:
        echoes = sorted({_echo_key(h.echo_time) for h in hs}, key=lambda v: (v is None, v or 0.0))
        if uid and len(hs) == 1 and hs[0].n_frames == 1:
            singletons.append(hs[0])
            continue
        if len(echoes) > 1:
            for te in echoes:
                sub = [h for h in hs if _echo_key(h.echo_time) == te]
                label = "none" if te is None else f"{te:g}"
                series.append(_Series(id=f"{gid}/TE={label}", series_uid=uid, headers=sub, echo_time=te))
        else:
            series.append(_Series(id=gid, series_uid=uid, headers=hs, echo_time=echoes[0]))
    series.extend(_merge_singletons(singletons))
    series.sort(key=lambda s: (s.headers[0].series_number is None, s.headers[0].series_number or 0, s.id))
    return series


def _merge_singletons(singletons: List[_Header]) -> List[_Series]:
    """Merge one-file series that are evidently slices of one volume (see the package docstring)."""
    groups: Dict[tuple, List[_Header]] = {}
    for h in singletons:
        if h.orientation is None or h.position is None:
            key = ("single", h.path)
        else:
            key = (
                os.path.dirname(h.path),
                h.modality,
                tuple(round(v, 3) for v in h.orientation),
                h.rows,
                h.columns,
                None if h.pixel_spacing is None else tuple(round(v, 4) for v in h.pixel_spacing),
                _echo_key(h.echo_time),
            )
        groups.setdefault(key, []).append(h)
    out: List[_Series] = []
    n_merged = 0
    for key, hs in groups.items():
        positions = {tuple(round(v, 3) for v in h.position) for h in hs if h.position is not None}
        if len(hs) > 1 and len(positions) == len(hs):
            n_merged += 1
            out.append(
                _Series(id=f"merged-{n_merged}", series_uid="", headers=hs, echo_time=_echo_key(hs[0].echo_time),
                        merged=True)
            )
        else:
            out.extend(_Series(id=h.series_uid, series_uid=h.series_uid, headers=[h]) for h in hs)
    return out


def _series_info(s: _Series, folder: str) -> dict:
    first = s.headers[0]
    descriptions = sorted({h.description for h in s.headers})
    folders = sorted({os.path.relpath(os.path.dirname(h.path), folder) for h in s.headers})
    info = {
        "id": s.id,
        "series_instance_uid": s.series_uid,
        "description": descriptions[0] if len(descriptions) == 1 else " / ".join(descriptions),
        "modality": first.modality,
        "n_files": len(s.headers),
        "n_slices": int(sum(h.n_frames for h in s.headers)),
        "rows": first.rows,
        "columns": first.columns,
        "series_number": first.series_number,
        "echo_time": s.echo_time,
        "folders": folders,
    }
    if s.merged:
        info["note"] = "files carry different SeriesInstanceUIDs; grouped by folder and geometry"
    elif not s.series_uid:
        info["note"] = "files carry no SeriesInstanceUID; grouped by description, number and geometry"
    return info


def _describe_choices(infos: List[dict]) -> str:
    parts = []
    for info in infos[:8]:
        desc = f" '{info['description']}'" if info["description"] else ""
        parts.append(f"{info['id']}{desc} ({info['n_slices']} slices)")
    if len(infos) > 8:
        parts.append(f"and {len(infos) - 8} more")
    return "; ".join(parts)


def _example(series_id: str) -> str:
    """``--series ID`` as it can be pasted into a shell."""
    return f"--series {shlex.quote(series_id)}"


def _select_series(folder: str, series_list: List[_Series], series: Optional[str]) -> _Series:
    infos = [_series_info(s, folder) for s in series_list]
    if not series_list:
        raise InputError(
            f"{folder} holds no DICOM image series; point to the folder that holds the image .dcm files."
        )
    if series is None:
        if len(series_list) == 1:
            return series_list[0]
        raise InputError(
            f"{folder} holds {len(series_list)} DICOM image series ({_describe_choices(infos)}); "
            f"pick one with --series and its id as listed (or its SeriesInstanceUID or SeriesDescription), "
            f"e.g. {_example(infos[0]['id'])}."
        )
    key = str(series).strip()
    if not key:
        raise InputError(
            f"--series is empty; {folder} holds {_describe_choices(infos)}: pass one of these ids, "
            f"e.g. {_example(infos[0]['id'])}."
        )
    hits = [
        (s, i) for s, i in zip(series_list, infos)
        if key in (i["id"], i["series_instance_uid"], i["description"])
    ]
    exact_id = [(s, i) for s, i in hits if key == i["id"]]
    if len(exact_id) == 1:
        return exact_id[0][0]
    if len(hits) == 1:
        return hits[0][0]
    if not hits:
        raise InputError(
            f"No DICOM series '{key}' in {folder}; it holds {_describe_choices(infos)}: pass one of these ids "
            f"with --series, e.g. {_example(infos[0]['id'])}."
        )
    raise InputError(
        f"'{key}' matches {len(hits)} DICOM series in {folder} ({_describe_choices([i for _, i in hits])}); "
        f"pass --series with one of these ids instead, e.g. {_example(hits[0][1]['id'])}."
    )
