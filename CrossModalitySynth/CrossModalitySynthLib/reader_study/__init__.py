"""Blind reader studies ("visual Turing test"): can physicians tell real from synthetic CT?

One module per job:

- :mod:`.design`: which images each reader sees (never the real and the synthetic image of
  one patient; configurable real fraction, hidden from readers);
- :mod:`.prepare`: identical preparation of every image (fixed grid, HU clip, int16,
  uncompressed, canonical header: all files the same size);
- :mod:`.study`: the study folder, the answer key beside it, :func:`create_study`;
- :mod:`.session`: a reader's session without GUI (current trial, answers appended and
  fsync-ed one by one, resume, going back when allowed);
- :mod:`.analysis`: accuracy, sensitivity, specificity, AUC, kappas;
- :mod:`.report`: CSV, markdown, HTML and the ROC plot.

Nothing here imports Slicer; a trial is shown in an MRML scene by
:mod:`CrossModalitySynthLib.slicer_support.reader_scene`.
"""

from .analysis import Reading, StudyResults, analyze_readings, analyze_study, rating_score
from .design import REAL, SYNTHETIC, SourceImage, make_plan, parse_reader_ids, sources_from_csv, sources_from_files
from .prepare import PrepareSettings, SourcePreparer
from .session import NotAllowedError, ReaderSession, SessionFinishedError, Trial
from .study import Study, create_study, key_path_for, load_key

__all__ = [
    "REAL",
    "SYNTHETIC",
    "NotAllowedError",
    "PrepareSettings",
    "Reading",
    "ReaderSession",
    "SessionFinishedError",
    "SourceImage",
    "SourcePreparer",
    "Study",
    "StudyResults",
    "Trial",
    "analyze_readings",
    "analyze_study",
    "create_study",
    "key_path_for",
    "load_key",
    "make_plan",
    "parse_reader_ids",
    "rating_score",
    "sources_from_csv",
    "sources_from_files",
]
