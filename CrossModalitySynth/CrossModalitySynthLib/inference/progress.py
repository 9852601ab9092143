"""Progress reporting: one callback signature for the CLI (tqdm or JSON lines) and Slicer.

A progress callback is called as ``callback(stage, done, total)``: ``stage`` a short name
("load", "prepare", "synthesize", "segment", "restore", "write"), ``done`` and ``total`` counts
in that stage's unit (slices for the network stages, 1 step otherwise).
"""

import json
import sys
import time
from typing import Callable, Optional

ProgressCallback = Callable[[str, int, int], None]

#: stages whose counts are slices (the others count steps)
SLICE_STAGES = ("synthesize", "segment")


class Progress:
    """Turns ``(stage, done, total)`` calls into a tqdm bar, JSON lines, or nothing.

    Args:
        mode: "bar" (tqdm on stderr), "json" (one JSON object per line on stdout, flushed:
            ``{"stage": ..., "done": ..., "total": ..., "fraction": ..., "elapsed_s": ...}``),
            or "none".
    """

    def __init__(self, mode: str = "bar", stream=None) -> None:
        if mode not in ("bar", "json", "none"):
            raise ValueError(f"progress mode must be bar, json or none, got {mode!r}")
        self.mode = mode
        self.stream = stream
        self._bar = None
        self._stage: Optional[str] = None
        self._t0 = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.mode == "json":
            out = self.stream or sys.stdout
            out.write(json.dumps({
                "stage": stage, "done": int(done), "total": int(total),
                "fraction": round(done / total, 4) if total else 1.0,
                "elapsed_s": round(time.perf_counter() - self._t0, 3),
            }) + "\n")
            out.flush()
        elif self.mode == "bar":
            if stage != self._stage:
                self.close()
                from tqdm import tqdm

                unit = "slice" if stage in SLICE_STAGES else "step"
                # disable=None: no bar when the stream is not a terminal (logs, pipes)
                self._bar = tqdm(total=total, desc=stage, unit=unit, file=self.stream or sys.stderr,
                                 leave=False, disable=None)
                self._stage = stage
            if self._bar is not None:
                self._bar.n = done
                self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._stage = None
