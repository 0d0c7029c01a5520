"""Stopping a run on SIGINT/SIGTERM without losing it.

The first signal only sets a flag: the loop finishes the step it is in, writes a checkpoint and raises
:class:`RunInterrupted`, which marks the mlflow run KILLED and leaves with the shell's code for that
signal (130 for SIGINT, 143 for SIGTERM). A second signal raises at once, wherever the run is; a
checkpoint being written then is abandoned as a ``.partial`` folder, so the last complete one stays
the latest.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on a signal; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
        self.message = message


class StopOnSignal:
    """Context manager: SIGINT/SIGTERM request a stop at the next step boundary; a second one stops now.

    ``at_once`` (a phrase such as ``"during start-up"``): the first signal already stops, for stretches with
    no step to finish. Without a handler there, SIGTERM would end the process where it stands and leave its
    mlflow run RUNNING; raising lets the caller mark it KILLED and the CLI exit 143 with a message.
    """

    def __init__(self, at_once: str | None = None) -> None:
        self.signum: int | None = None
        self.at_once = at_once
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame) -> None:
        if self.at_once is not None:
            raise RunInterrupted(signum, f"stopped by {signal.Signals(signum).name} {self.at_once}")
        if self.signum is not None:
            raise RunInterrupted(signum, f"stopped at once by a second {signal.Signals(signum).name}")
        self.signum = signum

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():  # signals reach only the main thread
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def interrupted(self, what: str) -> RunInterrupted:
        """The exception to raise once the step is finished and checkpointed; ``what`` says what was kept."""
        name = signal.Signals(self.signum).name
        return RunInterrupted(self.signum, f"stopped by {name}; {what}")
