"""Run the ``rlmath`` command on mimalloc instead of glibc's malloc: the CLI re-executes itself once with
``LD_PRELOAD`` naming the mimalloc library that the ``cmeel-mimalloc`` wheel installs.

Why: on the CPU demo most of the resident memory beyond the weights and the KV cache was glibc's heap
(3.4 GiB of ``[heap]`` segments during SFT), and how much of it stayed resident varied by more than a GiB
between runs of the same config. The same bounded run peaked at 4.22 GiB on mimalloc (README "Memory").
vLLM's CPU backend asks for a preloaded allocator (tcmalloc) for the same reason; mimalloc is the one
that installs from PyPI.

``RLMATH_MALLOC=system`` keeps glibc's allocator; the preload is skipped where the library is missing
(non-Linux platforms) or already loaded.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path
from typing import Mapping

from rlmath.errors import RLMathError

SETTING = "RLMATH_MALLOC"
CHOICES = ("mimalloc", "system")
LIBRARY = "cmeel.prefix/lib/libmimalloc.so.3"


def mimalloc_library() -> Path | None:
    """The shared library the ``cmeel-mimalloc`` wheel installed, or ``None`` where it is not installed."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        path = Path(importlib.metadata.distribution("cmeel-mimalloc").locate_file(LIBRARY))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def preload_environment(environ: Mapping[str, str], library: Path | None) -> dict[str, str] | None:
    """The environment to re-execute with, or ``None`` when this process should run as it is.

    >>> preload_environment({"LD_PRELOAD": "/x/libiomp5.so"}, Path("/l/libmimalloc.so.3"))["LD_PRELOAD"]
    '/l/libmimalloc.so.3 /x/libiomp5.so'
    >>> preload_environment({"LD_PRELOAD": "/l/libmimalloc.so.3"}, Path("/l/libmimalloc.so.3")) is None
    True
    """
    choice = environ.get(SETTING, "mimalloc")
    if choice not in CHOICES:
        raise RLMathError(f"{SETTING}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "system" or library is None:
        return None
    preloaded = environ.get("LD_PRELOAD", "").replace(":", " ").split()
    if str(library) in preloaded:  # already running on it (or the loader refused it once: never loop)
        return None
    return {**environ, "LD_PRELOAD": " ".join([str(library), *preloaded])}


def reexec_on_mimalloc() -> None:
    """Replace this process with the same command on mimalloc; returns only when nothing is to change.

    Called first thing in the console entry point, before torch or vLLM allocate anything.
    ``sys.orig_argv`` keeps ``-m rlmath.cli`` as it was given, so module and script launches both survive.
    """
    environ = preload_environment(os.environ, mimalloc_library())
    if environ is not None:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)


def active_allocator() -> str:
    """Which allocator this process runs on, read from its own memory map (logged as an mlflow tag)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "system"
    return "mimalloc" if "libmimalloc" in maps else "system"
