"""The embedded model's first-use conversion leaves nothing behind in the process that asked for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child of a large pytest process reports pytest's size.
MEASURE = """
import re
from pathlib import Path
from rlmath.models import resolve_model
folder = resolve_model("embedded:smollm2-135m-instruct")
print(folder)
print(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
"""


@pytest.mark.slow
def test_first_use_conversion_runs_outside_the_calling_process(tmp_path: Path) -> None:
    """Converted in the caller, the GGUF's two float32 copies peaked the caller at 1.8 GiB and stayed in its
    heap: the fresh-machine demo peaked 0.19 GiB above the warm-cache one (4.18 against 3.99 GiB)."""
    env = {**os.environ, "RLMATH_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", MEASURE], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    folder, peak_kib = done.stdout.split()[-2:]
    assert Path(folder) == tmp_path / "models" / "smollm2-135m-instruct"
    assert (Path(folder) / "model.safetensors").is_file() and (Path(folder) / "tokenizer.json").is_file()
    assert int(peak_kib) < 512 * 1024  # the caller itself never held the model (it was 1.8 GiB in-process)
    assert not list((tmp_path / "models").glob(".*"))  # no half-built temp folder left beside it
