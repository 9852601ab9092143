"""Progress reporting: the one helper behind every progress bar of the library and the command line.

A progress callback is called as ``callback(stage, done, total)``: ``stage`` a short name (it
titles the bar), ``done`` and ``total`` counts in the bar's unit (``total`` ``None`` when unknown,
as for a download without a length). :class:`Progress` turns these calls into a tqdm bar per stage
on stderr, JSON lines on stdout, or nothing. Bars are drawn only when their stream is a terminal,
so logs and pipes stay clean; without tqdm there is no bar.
"""

import json
import sys
import time
from typing import Callable, Dict, Optional

ProgressCallback = Callable[[str, int, int], None]

MODES = ("bar", "json", "none")


class Progress:
    """Turns ``(stage, done, total)`` calls into a tqdm bar, JSON lines, or nothing.

    Args:
        mode: "bar" (tqdm on stderr, a new bar when the stage changes), "json" (one JSON object
            per line on stdout, flushed: ``{"stage": ..., "done": ..., "total": ...,
            "fraction": ..., "elapsed_s": ...}``, total and fraction null when unknown), or "none".
        stream: where bars or JSON lines go instead of stderr / stdout.
        unit: the bars' unit ("step", "volume", "image", "B" ...); ``units`` maps stages to
            their own.
        unit_scale: show counts with k/M/G prefixes (bytes).
        leave: keep each finished bar on screen.

    Also a context manager that closes the last bar.
    """

    def __init__(self, mode: str = "bar", stream=None, unit: str = "step",
                 units: Optional[Dict[str, str]] = None, unit_scale: bool = False, leave: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be bar, json or none, got {mode!r}")
        self.mode = mode
        self.stream = stream
        self._bar_options = {"unit_scale": unit_scale, "leave": leave}
        self._unit, self._units = unit, dict(units or {})
        self._bar = None
        self._stage: Optional[str] = None
        self._t0 = time.perf_counter()

    def __call__(self, stage: str, done: int, total: Optional[int]) -> None:
        if self.mode == "json":
            out = self.stream or sys.stdout
            out.write(json.dumps({
                "stage": stage, "done": int(done), "total": None if total is None else int(total),
                "fraction": None if total is None else round(done / total, 4) if total else 1.0,
                "elapsed_s": round(time.perf_counter() - self._t0, 3),
            }) + "\n")
            out.flush()
        elif self.mode == "bar":
            if stage != self._stage:
                self.close()
                self._stage = stage
                self._bar = self._new_bar(stage, total)
            if self._bar is not None:
                self._bar.update(done - self._bar.n)

    def _new_bar(self, stage: str, total: Optional[int]):
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        # disable=None: no bar when the stream is not a terminal (logs, pipes)
        return tqdm(total=total, desc=stage, unit=self._units.get(stage, self._unit),
                    file=self.stream or sys.stderr, disable=None, **self._bar_options)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar = None
        self._stage = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
