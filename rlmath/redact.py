"""Keep secrets from the environment out of everything a run writes.

Tokens reach a process through its environment (``HF_TOKEN``, ``MLFLOW_TRACKING_TOKEN``,
``MLFLOW_TRACKING_PASSWORD``, ``OPENAI_API_KEY`` ...). A run writes logs, a resolved config, mlflow
params, tags, tables and artifacts; any of those can pick a secret up (a tracking URI with a password
in it, a prompt pasted with a key, a library's debug line). Rather than trust every writer, the
tracking boundary and the logging system pass text through :func:`redact`, which replaces the
*values* of secret-looking environment variables with ``***``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

MASK = "***"
# Names whose values are secrets: the known ones plus any *_TOKEN / *_KEY / *_SECRET / *_PASSWORD.
_SECRET_NAME = re.compile(r"(^HF_TOKEN$|^MLFLOW_TRACKING_(TOKEN|PASSWORD)$|_TOKEN$|_KEY$|_SECRET$|_PASSWORD$)")
# Values this short are not secrets worth masking (and masking "1" or "true" would garble logs).
_MIN_SECRET_LENGTH = 6


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of secret-named variables, longest first (so a secret containing another masks whole).

    >>> secret_values({"HF_TOKEN": "hf_abcdef", "PATH": "/bin", "X_KEY": "1"})
    ['hf_abcdef']
    """
    env = os.environ if environ is None else environ
    # Names first, then each value with .get(): another thread may remove a variable while this reads
    # (mlflow's telemetry thread pops _MLFLOW_TELEMETRY_SESSION_ID), and os.environ.items() then raises KeyError.
    values = (env.get(name) for name in list(env) if _SECRET_NAME.search(name.upper()))
    found = {value for value in values if value is not None and len(value) >= _MIN_SECRET_LENGTH}
    return sorted(found, key=len, reverse=True)


def redact(text: str, environ: dict[str, str] | None = None) -> str:
    """``text`` with every secret value replaced by ``***``.

    >>> redact("http://u:s3cr3t99@host", {"MLFLOW_TRACKING_PASSWORD": "s3cr3t99"})
    'http://u:***@host'
    """
    for value in secret_values(environ):
        text = text.replace(value, MASK)
    return text


def redact_value(value: Any) -> Any:
    """Redact strings inside a JSON-like value (dicts, lists, strings); other values pass through."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that formats the record, then masks secrets in the final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a malformed record stays as it is; logging reports it on its own
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def install_logging_filter() -> None:
    """Mask secrets in every log record of this process, whichever logger or handler emits it.

    A filter on the root logger would miss records of child loggers (filters do not propagate), so
    the filter sits in the record factory, which every record passes through once.
    """
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_rlmath_redacting", False):
        return

    def redacting_factory(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _FILTER.filter(record)
        return record

    redacting_factory._rlmath_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)
