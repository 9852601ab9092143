"""What machine a test or benchmark runs on, and its processes."""

import os
import platform


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), recorded beside every benchmark figure."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def group_gone(pgid: int) -> bool:
    """True when no process of group ``pgid`` is left (signal 0 finds none)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False
