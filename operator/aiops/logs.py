"""The operator's own log: kopf's text lines, or JSON lines (`--log-format json`), one event a
line, with the names of what the line concerns on it: `namespace`, `subject`, `incident`,
`chaos`.

The names come from three places: kopf's object reference (every line kopf logs about an
object, its own included), the task's context (each daemon binds the names of what it drives,
so every line logged while it runs carries them: `bind`), and the line itself
(`extra={"incident": ...}`). Every line is redacted before it is written: the message, its
traceback and its fields go through the operator's `Redactor`s (the shapes of secrets, and the
keys and URLs it registered), so nothing secret reaches a log.
"""

from __future__ import annotations

import logging
import traceback
import weakref
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Literal

from aiops.redact import Redactor

LogFormat = Literal["text", "json"]
NAMES = ("namespace", "subject", "incident", "chaos")
REFKEY = "object"  # kopf's object reference in a JSON line
_KIND_NAME = {"Incident": "incident", "Chaos": "chaos", "Subject": "subject"}
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "k8s_ref",
    "k8s_skip",
    "settings",
}

_names: ContextVar[Mapping[str, str] | None] = ContextVar("aiops_log_names", default=None)


def bind(**names: str | None) -> None:
    """Adds `names` (subject=, incident=, chaos=, namespace=) to every line this task (and the
    tasks it starts from now on) logs. A kopf daemon runs in a task of its own."""
    _names.set({**(_names.get() or {}), **{k: v for k, v in names.items() if v}})


class NamesAndRedaction(logging.Filter):
    """Puts the names on a record and redacts it; installed on the handlers that write."""

    def __init__(self) -> None:
        super().__init__()
        self.redactors: weakref.WeakSet[Redactor] = weakref.WeakSet()
        self.shapes = Redactor()  # the shapes of secrets, before any operator registered one

    def redact(self, text: str) -> str:
        for r in [self.shapes, *self.redactors]:
            text = r.redact_text(text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        names = dict(_names.get() or {})
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            key = _KIND_NAME.get(str(ref.get("kind")))
            if key and ref.get("name"):
                names[key] = str(ref["name"])
            if ref.get("namespace"):
                names["namespace"] = str(ref["namespace"])
        for key, value in names.items():
            if not getattr(record, key, None):
                setattr(record, key, value)
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text, record.exc_info = self.redact(text), None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str) and key not in NAMES:
                setattr(record, key, self.redact(value))
        return True


FILTER = NamesAndRedaction()


def redact_with(redactor: Redactor) -> None:
    """Every line from now on is redacted with `redactor` too (its registered secrets)."""
    FILTER.redactors.add(redactor)


def install() -> None:
    """Puts the names and redaction on every handler of the root logger (kopf's)."""
    for handler in logging.getLogger().handlers:
        if FILTER not in handler.filters:
            handler.addFilter(FILTER)


def configure(log_format: LogFormat, verbose: bool = False) -> None:
    """kopf's logging in `log_format` (JSON: kopf's formatter, its object reference under
    `object`), with the names and redaction installed."""
    import kopf

    kopf.configure(
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_prefix=None,  # text: kopf's [namespace/name] prefix; JSON: the names as fields
        log_refkey=REFKEY,
    )
    if not verbose:  # a line per HTTP request (each observation makes several) is noise
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    install()


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a line: the values that are set."""
    return {k: v for k, v in values.items() if v not in (None, "", [], {})}
