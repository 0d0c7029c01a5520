"""Crash a running vLLM engine for real: SIGKILL its engine-core process, as an OOM killer would."""

from __future__ import annotations

import psutil


def kill_engine_core() -> int:
    """SIGKILL this process's vLLM engine core(s); returns how many were killed."""
    children = [p for p in psutil.Process().children(recursive=True)
                if "EngineCore" in p.name() + " ".join(p.cmdline())]
    for child in children:
        child.kill()
    psutil.wait_procs(children, timeout=30)
    return len(children)
