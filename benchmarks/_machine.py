"""What every benchmark script records about the machine: its CPU model and load average."""

from __future__ import annotations

import os
import platform


def cpu_model():
    """The CPU's model name from ``/proc/cpuinfo`` (else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    """The 1, 5 and 15-minute load averages rounded to 0.01, or None where unknown."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def format_load(load):
    """``"0.7 / 0.9 / 1.6"`` for :func:`load_average`'s list (``"unknown"`` for None)."""
    return "unknown" if load is None else " / ".join(f"{x:.1f}" for x in load)
