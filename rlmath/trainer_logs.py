"""Forward a transformers/trl Trainer's logs to rlmath's tracker, and its steps to a progress bar.

SFT and DPO both train through trl trainers; their numeric logs go to our tracker (under the recipe's
prefix) instead of trl's own mlflow callback, so every recipe's metrics land in one run the same way.
"""

from __future__ import annotations

from collections.abc import Callable

Log = Callable[[dict[str, float], int], None]
OnStep = Callable[[int, int], None]


def forward_logs(prefix: str, log: Log, on_step: OnStep | None = None):
    """A ``TrainerCallback``: numeric logs → ``log({f"{prefix}/{key}": value}, step)``; steps → ``on_step``."""
    from transformers import TrainerCallback  # heavy: loaded only when a trl recipe trains

    class ForwardLogs(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = dict(logs or {})
            if "train_runtime" in logs:  # the end-of-training summary repeats the last step's epoch
                logs.pop("epoch", None)
            numeric = {f"{prefix}/{k}": float(v) for k, v in logs.items() if isinstance(v, (int, float))}
            if numeric:
                log(numeric, state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if on_step is not None:
                on_step(state.global_step, state.max_steps)

    return ForwardLogs()
