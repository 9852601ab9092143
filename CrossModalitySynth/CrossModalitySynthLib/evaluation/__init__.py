"""Evaluation of synthetic images: the engine behind ``cmsynth evaluate``.

One job per module:

- :mod:`.cases`: which volumes to compare (lists, folders matched by name, or a CSV);
- :mod:`.runner`: every metric per case and pooled (calls :mod:`CrossModalitySynthLib.metrics`);
- :mod:`.definitions`: name, unit and definition of every reported number;
- :mod:`.plots`: the figures (matplotlib, Agg canvas);
- :mod:`.report`: the self-contained HTML report;
- :mod:`.outputs`: the output folder (metrics.json, per_case.csv, plots/, report.html), atomic.

Typical use::

    inputs = collect_inputs(["real/"], ["synthetic/"], paired=True)
    result = evaluate(inputs, EvaluationSettings(features="histspec"))
    write_outputs(result, "eval_out")

matplotlib is imported only when the figures are drawn.
"""

from .cases import CasePair, EvaluationInputs, Volume, collect_inputs, read_case_csv
from .definitions import DEFINITIONS
from .outputs import check_output_dir, per_case_table, write_outputs
from .runner import EvaluationResult, EvaluationSettings, evaluate, make_extractor

__all__ = [
    "CasePair",
    "DEFINITIONS",
    "EvaluationInputs",
    "EvaluationResult",
    "EvaluationSettings",
    "Volume",
    "check_output_dir",
    "collect_inputs",
    "evaluate",
    "make_extractor",
    "per_case_table",
    "read_case_csv",
    "write_outputs",
]
