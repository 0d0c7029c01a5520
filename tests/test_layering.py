"""Import layering: imports point down (cli → recipes → run → stage modules → synth, rewards, config).

The graph is read with ``ast`` from every ``.py`` under rlmath/ and rewards/, counting imports at module
level AND inside functions (a lazy import is still a dependency). Rules:

- no import cycles;
- ``rewards`` imports nothing of rlmath and no heavy ML stack;
- ``rlmath.synth`` (the data engine) imports only rewards, rlmath.errors, itself and third-party code
  (``datasets`` included: it is a third-party library, not a layer above);
- algorithms never import each other;
- recipes (``rlmath.loop``, ``rlmath.algorithms.*``) are imported only by the CLI, and by the GRPO loop
  for an algorithm it composes (the SFT warm start): never by run.py or a stage module;
- the CLI module is light, so ``rlmath --help`` is instant.

Each checker is a function over a plain ``{module: {imported modules}}`` graph, so the tests at the end
feed it synthetic graphs and prove that it fails when a rule is broken.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rlmath", "rewards")
HEAVY = {"torch", "vllm", "trl", "mlflow", "peft", "transformers", "datasets", "accelerate"}

Graph = dict[str, set[str]]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module of a (possibly relative) ``from ... import``."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every module ``path`` imports, anywhere in the file; ``from pkg import sub`` counts as ``pkg.sub``."""
    module, is_package = module_name(path), path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return found


def build_graph() -> Graph:
    files = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    known = {module_name(path) for path in files}
    return {module_name(path): imports_of(path, known) for path in files}


def internal(graph: Graph) -> Graph:
    """Only the edges between modules of this repository."""
    return {module: {target for target in targets if target in graph and target != module}
            for module, targets in graph.items()}


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or ``None`` (iterative DFS, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def _top(name: str) -> str:
    return name.split(".")[0]


def rewards_violations(graph: Graph) -> list[str]:
    return [f"{module} imports {target}" for module, targets in sorted(graph.items()) if _top(module) == "rewards"
            for target in sorted(targets) if _top(target) == "rlmath" or _top(target) in HEAVY]


def synth_violations(graph: Graph) -> list[str]:
    """The data engine may use rewards, rlmath.errors, itself and third-party libraries only."""
    def allowed(target: str) -> bool:
        return _top(target) != "rlmath" or target in ("rlmath.errors", "rlmath.synth") \
            or target.startswith("rlmath.synth.")

    return [f"{module} imports {target}" for module, targets in sorted(graph.items())
            if module == "rlmath.synth" or module.startswith("rlmath.synth.")
            for target in sorted(targets) if not allowed(target)]


def _is_algorithm(name: str) -> bool:
    return name.startswith("rlmath.algorithms.")


def algorithm_violations(graph: Graph) -> list[str]:
    return [f"{module} imports {target}" for module, targets in sorted(graph.items()) if _is_algorithm(module)
            for target in sorted(targets) if _is_algorithm(target) and target != module]


def recipe_violations(graph: Graph) -> list[str]:
    """Recipes are entry points: the CLI and the benchmark drivers (``rlmath.bench.*``, which time a real
    GRPO step) import them, the GRPO loop composes algorithms; nothing else does."""
    def is_recipe(name: str) -> bool:
        return name == "rlmath.loop" or _is_algorithm(name)

    def may_import(module: str, target: str) -> bool:
        return module == "rlmath.cli" or module.startswith("rlmath.bench.") or (module == "rlmath.loop" and _is_algorithm(target)) or module == target

    return [f"{module} imports {target}" for module, targets in sorted(graph.items())
            for target in sorted(targets) if is_recipe(target) and not may_import(module, target)]


# ---- the rules, on this repository ----

def test_no_import_cycles() -> None:
    cycle = find_cycle(internal(build_graph()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_rewards_stays_pure() -> None:
    assert rewards_violations(build_graph()) == []


def test_synth_imports_only_rewards_errors_and_third_party() -> None:
    assert synth_violations(build_graph()) == []


def test_algorithms_do_not_import_each_other() -> None:
    assert algorithm_violations(build_graph()) == []


def test_recipes_are_imported_only_by_the_cli() -> None:
    assert recipe_violations(build_graph()) == []


def test_graph_sees_function_level_and_relative_imports() -> None:
    graph = build_graph()
    assert "rlmath.run" in graph["rlmath.loop"]  # module level
    assert "transformers" in graph["rlmath.eval_command"]  # inside a function
    assert "rlmath.loop" in graph["rlmath.cli"]  # inside a function, `from rlmath.loop import ...`


def test_cli_import_is_light() -> None:
    code = ("import sys, rlmath.cli; "
            "print(sorted(m for m in ('torch','vllm','mlflow','transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# ---- the checkers fail when a rule is broken ----

def test_checker_finds_a_cycle_and_names_it() -> None:
    graph = {"rlmath.run": {"rlmath.evaluation"}, "rlmath.evaluation": {"rlmath.eval_stats"},
             "rlmath.eval_stats": {"rlmath.run"}, "rlmath.cli": {"rlmath.run"}}
    assert find_cycle(graph) == ["rlmath.run", "rlmath.evaluation", "rlmath.eval_stats", "rlmath.run"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_a_cycle_added_to_the_real_graph_is_caught() -> None:
    graph = internal(build_graph())
    graph["rlmath.eval_stats"] = graph["rlmath.eval_stats"] | {"rlmath.loop"}  # loop → … → eval_stats → loop
    cycle = find_cycle(graph)
    assert cycle is not None and "rlmath.loop" in cycle and "rlmath.eval_stats" in cycle


def test_checkers_flag_each_broken_rule() -> None:
    assert rewards_violations({"rewards.scoring": {"torch", "math"}}) == ["rewards.scoring imports torch"]
    assert synth_violations({"rlmath.synth.from_model": {"rlmath.sampling", "rlmath.errors", "rewards", "sympy",
                                                         "rlmath.synth.engine"}}) == \
        ["rlmath.synth.from_model imports rlmath.sampling"]
    assert algorithm_violations({"rlmath.algorithms.dpo": {"rlmath.algorithms.grpo"}}) == \
        ["rlmath.algorithms.dpo imports rlmath.algorithms.grpo"]
    assert recipe_violations({"rlmath.run": {"rlmath.loop"}, "rlmath.algorithms.sft": {"rlmath.loop"},
                              "rlmath.loop": {"rlmath.algorithms.sft"}, "rlmath.cli": {"rlmath.loop"}}) == \
        ["rlmath.algorithms.sft imports rlmath.loop", "rlmath.run imports rlmath.loop"]
