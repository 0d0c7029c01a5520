"""The ``rlmath`` command re-executes itself on mimalloc (rlmath/allocator.py) unless told not to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlmath.allocator import SETTING, mimalloc_library, preload_environment
from rlmath.errors import RLMathError

ROOT = Path(__file__).resolve().parents[1]
LIB = Path("/opt/lib/libmimalloc.so.3")


def test_the_library_goes_first_and_what_was_preloaded_stays() -> None:
    environ = preload_environment({"LD_PRELOAD": "/a/libiomp5.so:/b/libtcmalloc.so", "HOME": "/h"}, LIB)
    assert environ["LD_PRELOAD"] == f"{LIB} /a/libiomp5.so /b/libtcmalloc.so"
    assert environ["HOME"] == "/h"


@pytest.mark.parametrize("environ", [{SETTING: "system"}, {"LD_PRELOAD": str(LIB)}])
def test_nothing_changes_when_asked_for_glibc_or_already_on_mimalloc(environ) -> None:
    assert preload_environment(environ, LIB) is None


def test_nothing_changes_where_the_library_is_not_installed() -> None:
    assert preload_environment({}, None) is None


def test_an_unknown_allocator_is_refused_naming_the_setting() -> None:
    with pytest.raises(RLMathError, match=f"{SETTING}='jemalloc'"):
        preload_environment({SETTING: "jemalloc"}, LIB)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "MIMALLOC_VERBOSE": "1", **env}
    environ.pop("LD_PRELOAD", None)
    return subprocess.run([sys.executable, "-m", "rlmath.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=environ, timeout=120)


@pytest.mark.skipif(mimalloc_library() is None, reason="cmeel-mimalloc installs on Linux only")
def test_the_command_runs_on_mimalloc_and_on_glibc_when_told() -> None:
    on_mimalloc = _cli("--help")
    assert on_mimalloc.returncode == 0 and "Usage" in on_mimalloc.stdout
    assert "mimalloc: process init" in on_mimalloc.stderr  # mimalloc's own banner, MIMALLOC_VERBOSE=1
    on_glibc = _cli("--help", **{SETTING: "system"})
    assert on_glibc.returncode == 0 and "mimalloc" not in on_glibc.stderr


def test_a_bad_setting_exits_2_with_one_line_and_no_traceback() -> None:
    result = _cli("--help", **{SETTING: "tcmalloc"})
    assert result.returncode == 2
    assert f"{SETTING}='tcmalloc'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(mimalloc_library() is None, reason="cmeel-mimalloc installs on Linux only")
@pytest.mark.parametrize(("preload", "expected"), [(True, "mimalloc"), (False, "system")])
def test_a_process_reports_the_allocator_it_runs_on(preload: bool, expected: str) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if preload:
        environ["LD_PRELOAD"] = str(mimalloc_library())
    out = subprocess.run([sys.executable, "-c", "from rlmath.allocator import active_allocator; print(active_allocator())"],
                         capture_output=True, text=True, cwd=ROOT, env=environ, timeout=60)
    assert out.stdout.strip() == expected, out.stderr
