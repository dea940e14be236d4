"""A cell's own peak resident memory: the process's peak (``VmHWM``), reset at the cell's start
where Linux allows it (``/proc/self/clear_refs``), NaN elsewhere."""

from __future__ import annotations

import gc
import math
import re
from pathlib import Path

__all__ = ["peak_rss_mb", "reset_peak_rss"]


_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
_VM_HWM = re.compile(r"^VmHWM:\s*(\d+)\s*kB", re.MULTILINE)


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory to its current one (Linux >= 4.0: ``5`` to
    ``/proc/self/clear_refs``) after a garbage collection (earlier cells' garbage is not this
    cell's); False where that is impossible (not Linux, or not allowed)."""
    gc.collect()
    try:
        _CLEAR_REFS.write_text("5")
        return _VM_HWM.search(_STATUS.read_text()) is not None
    except OSError:
        return False


def peak_rss_mb(reset: bool) -> float:
    """Peak resident memory since :func:`reset_peak_rss` (``VmHWM``), MiB; NaN if it was not
    reset (``ru_maxrss``, the maximum since the process started, carries earlier cells' peaks)."""
    try:
        found = _VM_HWM.search(_STATUS.read_text()) if reset else None
    except OSError:
        found = None
    return math.nan if found is None else int(found.group(1)) / 1024
