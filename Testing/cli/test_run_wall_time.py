"""``cmsynth run`` prints the wall time of the whole command, with its stages beside it
(issue 13: the printed "time" used to leave out start-up, reading, metrics, overlays and writing)."""

import os
import re
import subprocess
import sys
import time

from CrossModalitySynthLib.phantom import write_cases


def test_printed_time_is_the_wall_time_of_the_whole_command(tmp_path):
    case = write_cases(str(tmp_path / "ph"), n_cases=1, seed=3, size="small")[0]
    argv = [sys.executable, "-m", "CrossModalitySynthLib.cli.main", "run", "--model", "demo-t1dual-to-ct",
            "--liver-model", "demo-liver-unet-t1in", "--reference-ct", os.path.join(case, "ct_on_mr.nii.gz"),
            "--out", str(tmp_path / "r"), os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz")]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    measured = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith("time"))
    m = re.search(r"time\s+([0-9.]+) s wall, the whole command \((.*) s\) on cpu", line)
    assert m, line
    wall = float(m.group(1))
    stages = dict((name, float(v)) for name, v in (part.rsplit(" ", 1) for part in m.group(2).split(", ")))
    assert set(stages) == {"read", "synthesis", "liver", "metrics", "write", "overlays"}, stages
    # the wall time holds every stage, start-up and model loading (which no stage counts), and
    # cannot exceed what this test measured from outside (the process still has to exit after it)
    assert wall >= sum(stages.values()) + 0.1
    assert wall <= measured + 0.05
