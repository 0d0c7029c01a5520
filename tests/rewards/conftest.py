"""The full fuzz run (``-m fuzz``) is deselected unless asked for by name.

Not by ``addopts = -m "not fuzz"``: a later ``-m "not slow"`` on the command line would replace that
expression and pull the 100,000-input run into ``make test-fast``.
"""

from __future__ import annotations


def pytest_collection_modifyitems(config, items):
    if "fuzz" in (config.getoption("markexpr") or ""):
        return
    chosen = [item for item in items if item.get_closest_marker("fuzz") is None]
    deselected = [item for item in items if item.get_closest_marker("fuzz") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = chosen
