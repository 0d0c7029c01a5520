"""The one exception type the CLI turns into a clear message and a non-zero exit."""


class RLMathError(RuntimeError):
    """A user-facing failure (missing model, bad dataset file, stale adapter): the message says what to fix."""
