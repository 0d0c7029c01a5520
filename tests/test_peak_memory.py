"""Freed heap goes back to the OS between stages (`release_freed_memory`), so a stage's leftovers do not
raise the next stage's peak."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlmath import peak_memory

# 256 MiB in 64 KiB blocks (glibc serves them from the heap, under its mmap threshold), each followed by a
# small block that stays: the freed blocks are holes inside the heap, which glibc never returns by itself.
FRAGMENTED_HEAP = """
import sys
from rlmath import peak_memory
if sys.argv[1] == "off":
    peak_memory._MALLOC_TRIM = None
blocks, pins = [], []
for _ in range(4096):
    blocks.append(bytearray(64 * 1024))
    pins.append(bytearray(1024))
del blocks
before = peak_memory.current_rss_gib()
peak_memory.release_freed_memory()
print(before - peak_memory.current_rss_gib())
"""


def released_gib(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP, mode], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


@pytest.mark.skipif(peak_memory._MALLOC_TRIM is None, reason="glibc only: another C library has no malloc_trim")
def test_freed_heap_holes_go_back_to_the_os():
    assert released_gib("on") > 0.2  # most of the 0.25 GiB
    assert released_gib("off") < 0.05  # garbage collection alone keeps the holes resident


def test_current_rss_is_read_and_below_the_peak():
    now = peak_memory.current_rss_gib()
    assert 0.0 < now <= peak_memory.peak_rss_gib() + 1e-3
