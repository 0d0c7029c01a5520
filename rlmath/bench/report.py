"""The one result shape every ``rlmath bench`` verb writes, and its table.

``{"name", "ours", "peer", "ratio", "unit", "machine", "config", ...extras}``: ours and peer are
measured in the same process run on the same work, so the ratio holds on any machine even when the
absolute numbers do not.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def machine() -> dict:
    """What the numbers ran on: CPU count, platform, torch build and accelerator."""
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "device": device}


def finish(result: dict, out: Path | None, console=None, *, rows: list[tuple[str, str]] = ()) -> dict:
    """Add the machine, write ``out`` (JSON) and print the table; returns the result."""
    result = {**result, "machine": machine()}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result, console, rows)
    return result


def print_table(result: dict, console=None, rows: list[tuple[str, str]] = ()) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bench {result['name']} ({result['unit']})")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row(f"ours: {result.get('ours_label', 'rlmath')}", _fmt(result["ours"]))
    table.add_row(f"peer: {result.get('peer_label', 'peer')}", _fmt(result["peer"]))
    table.add_row("ratio ours/peer", _fmt(result["ratio"]))
    for label, value in rows:
        table.add_row(label, value)
    (console or Console()).print(table)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:,.3g}" if isinstance(value, float) else str(value)

