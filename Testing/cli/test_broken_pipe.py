"""`cmsynth info X | head -1`: a reader that goes away ends the command quietly (no traceback),
with SIGPIPE's exit status, as Unix tools do."""

import os
import subprocess
import sys

import SimpleITK as sitk

from testsupport.images import make_image

CMSYNTH = os.path.join(os.path.dirname(sys.executable), "cmsynth")


def test_closed_stdout_gives_no_traceback(tmp_path):
    path = str(tmp_path / "v.nii.gz")
    sitk.WriteImage(make_image(), path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before cmsynth writes its first line
    try:
        proc = subprocess.run([CMSYNTH, "info", path], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.stderr == ""


def test_shell_pipe_into_head_prints_the_first_line_only(tmp_path):
    path = str(tmp_path / "v.nii.gz")
    sitk.WriteImage(make_image(), path)
    proc = subprocess.run("set -o pipefail; '{}' info '{}' | head -1".format(CMSYNTH, path), shell=True,
                          executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr, proc.stderr
