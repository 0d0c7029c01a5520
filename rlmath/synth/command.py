"""`rlmath synth`: validate options, generate, decontaminate, write the dataset folder, report.

Every bad option raises `RLMathError` naming the option (the CLI prints it and exits non-zero)
before any generation work starts.
"""

from __future__ import annotations

import re
import shlex
import time
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import List, Optional, Tuple

from rich.table import Table

from rlmath.errors import RLMathError
from rlmath.synth import engine
from rlmath.synth.check import CHECK_NAME
from rlmath.synth.decontam import THRESHOLD, EvalTexts, N, contaminated
from rlmath.synth.dedup import capacity_text
from rlmath.synth.export import write_dataset
from rlmath.synth.registry import FAMILIES


def parse_families(text: Optional[str]) -> Optional[List[str]]:
    """Comma-separated family names -> list (None = all); unknown names are an error.

    >>> parse_families("add, mul")
    ['add', 'mul']
    """
    if text is None or not text.strip():
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise RLMathError(
            f"families: unknown family {', '.join(map(repr, unknown))}; choose from {', '.join(FAMILIES)}"
        )
    return names


def parse_difficulty(text: str) -> Tuple[int, int]:
    """``"3"`` -> (3, 3), ``"1-5"`` -> (1, 5); anything else (or outside 1-5) is an error.

    >>> parse_difficulty("2-4"), parse_difficulty(" 3 ")
    ((2, 4), (3, 3))
    """
    m = re.fullmatch(r"\s*([1-5])\s*(?:-\s*([1-5])\s*)?", str(text))
    if not m:
        raise RLMathError(f"difficulty: expected a level 1-5 or a range like 1-5, got {text!r}")
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if lo > hi:
        raise RLMathError(f"difficulty: range {text!r} is reversed; write {hi}-{lo}")
    return lo, hi


def rlmath_version() -> str:
    """Installed rlmath version (the card records it)."""
    try:
        return version("rlmath")
    except PackageNotFoundError:  # running from a source tree without metadata
        return "unknown"


def run_synth(
    n: int,
    seed: int,
    out: Path,
    families: Optional[str] = None,
    difficulty: str = "1-5",
    decontaminate: Optional[EvalTexts] = None,
    console=None,
) -> Path:
    """Generate `n` items (before dedup and decontamination) and write them to `out`; returns `out`."""
    if n <= 0:
        raise RLMathError(f"n: must be a positive number of problems, got {n}")
    names, levels = parse_families(families), parse_difficulty(difficulty)
    started = time.perf_counter()
    items = engine.generate(n, seed, names, levels)
    gen_stats = dict(engine.last_stats)
    stats = {
        "engine_version": engine.ENGINE_VERSION,
        "rlmath_version": rlmath_version(),
        "seed": seed,
        "n_requested": n,
        "families": names or list(FAMILIES),
        "difficulty": list(levels),
        "check": CHECK_NAME,
        "retried": gen_stats["retried"],
        "dropped_check": gen_stats["dropped"],
        "duplicates_dropped": gen_stats["duplicates"],
        "duplicates_by_family": gen_stats["duplicates_by_family"],
        "capacity": gen_stats["capacity"],
        "command": "rlmath synth "
        + shlex.join(
            [f"--n={n}", f"--seed={seed}", f"--out={out}", f"--difficulty={difficulty}"]
            + ([f"--families={families}"] if families else [])
            + ([f"--decontaminate-against={decontaminate.source}"] if decontaminate else [])
        ),
    }
    if decontaminate is not None:
        drop = set(contaminated([it["question"] for it in items], decontaminate.texts))
        stats["decontamination"] = {
            "against": decontaminate.source,
            "eval_texts": len(decontaminate.texts),
            "dropped": len(drop),
            "dropped_by_family": dict(Counter(items[i]["family"] for i in drop)),
            "n": N,
            "threshold": THRESHOLD,
        }
        items = [it for i, it in enumerate(items) if i not in drop]
    stats["generation_seconds"] = round(time.perf_counter() - started, 3)
    stats["counts"] = {s: sum(1 for it in items if it["meta"]["split"] == s) for s in ("train", "test")}
    write_dataset(items, Path(out), stats)
    _report(console, items, stats, Path(out))
    return Path(out)


def _report(console, items: List[dict], stats: dict, out: Path) -> None:
    """Print a per-family table and the drop counts (quiet when no console is given)."""
    if console is None:
        return
    table = Table(title=f"rlmath synth -> {out}")
    for col in ("family", "train", "test", "repeats dropped", "capacity (est.)"):
        table.add_column(col, justify="left" if col == "family" else "right")
    counts = Counter((it["family"], it["meta"]["split"]) for it in items)
    for fam in sorted({f for f, _ in counts} | set(stats["capacity"])):
        table.add_row(fam, str(counts[(fam, "train")]), str(counts[(fam, "test")]),
                      str(stats["duplicates_by_family"].get(fam, 0)), capacity_text(stats["capacity"].get(fam)))
    console.print(table)
    console.print(
        f"{stats['counts']['train']} train / {stats['counts']['test']} test items; check: {stats['check']}; "
        f"regenerated {stats['retried']}, dropped {stats['dropped_check']} by the check and "
        f"{stats['duplicates_dropped']} repeated questions; {stats['generation_seconds']} s"
    )
    if "decontamination" in stats:
        d = stats["decontamination"]
        console.print(
            f"decontamination against {d['against']}: dropped {d['dropped']} of {stats['n_requested']} items "
            f"({d['n']}-gram overlap >= {d['threshold']} with {d['eval_texts']} eval texts)"
        )
