"""Temporary seam: the run-lifecycle pieces the DPO and PTS recipes use, in one place.

The shared lifecycle is moving into ``rlmath/run.py`` (issue 10). Until it lands, the preference
recipes take today's helpers from ``rlmath.loop`` through this module only; when ``run.py`` lands,
point these names at it (or import ``rlmath.run`` in the recipes) and delete this file.
"""

from __future__ import annotations

import contextlib

from rlmath.loop import Trainer, _progress, evaluate_and_log, finish_run, setup, sync_adapter

__all__ = ["Trainer", "evaluate_and_log", "finish_run", "progress", "setup", "sync_adapter", "tracked_run"]


def progress(console):
    """The run's rich progress display."""
    return _progress(console)


@contextlib.contextmanager
def tracked_run(trainer: Trainer):
    """Mark the mlflow run FAILED on any exception and always close the sampler."""
    try:
        yield trainer
    except BaseException:
        trainer.tracker.finish("FAILED")
        raise
    finally:
        trainer.sampler.close()
