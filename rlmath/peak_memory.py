"""Peak resident memory of this process, for mlflow (``system/peak_rss_gib``) and ``rlmath bench memory``."""

from __future__ import annotations

import resource
import sys


def peak_rss_gib(who: int = resource.RUSAGE_SELF) -> float:
    """High-water mark of resident memory in GiB (``RUSAGE_CHILDREN``: the largest waited-for child).

    ru_maxrss is KiB on Linux and bytes on macOS.
    """
    peak = resource.getrusage(who).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20
