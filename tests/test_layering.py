"""Import rules from DESIGN.md: rewards never imports rlmath or heavy ML stacks; algorithms never
import each other; the CLI module is light, so `rlmath --help` is instant."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"torch", "vllm", "trl", "mlflow", "peft", "transformers", "rlmath"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "rewards").rglob("*.py")), ids=lambda p: p.name)
def test_rewards_stays_pure(path: Path) -> None:
    tops = {name.split(".")[0] for name in imported_modules(path)}
    assert not tops & HEAVY, f"{path} imports {tops & HEAVY}"


ALGORITHMS = sorted(p for p in (ROOT / "rlmath" / "algorithms").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", ALGORITHMS, ids=lambda p: p.name)
def test_algorithms_do_not_import_each_other(path: Path) -> None:
    others = {f"rlmath.algorithms.{p.stem}" for p in ALGORITHMS if p != path}
    assert not imported_modules(path) & others


def test_cli_import_is_light() -> None:
    code = "import sys, rlmath.cli; print(sorted(m for m in ('torch','vllm','mlflow','transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


SYNTH_MAY_IMPORT = ("rewards", "rlmath.errors", "rlmath.synth")


@pytest.mark.parametrize("path", sorted((ROOT / "rlmath" / "synth").rglob("*.py")), ids=lambda p: p.name)
def test_synth_stays_at_the_bottom(path: Path) -> None:
    """The data engine imports only the verifier, the error type and itself: never the trainer."""
    ours = {name for name in imported_modules(path) if name.split(".")[0] in ("rlmath", "rewards")}
    assert all(name.startswith(SYNTH_MAY_IMPORT) for name in ours), f"{path} imports {ours}"
