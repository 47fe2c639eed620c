"""Masking secrets before anything is written down, and clipping text to a budget.

Everything the operator records (audit records, Incident status, Events, its own logs) goes
through a `Redactor` first. Two rules, both applied to every string at any depth:

- by name: the value under a key that names a secret (`password`, `apiKey`, `Authorization`,
  `x-api-key`, ...) is replaced whatever it looks like;
- by shape: text that looks like a credential (an Anthropic key, a bearer token, the
  user:password of a URL, an AWS access key, a PEM private key, a JWT, `password=...`) is
  masked wherever it appears, because tool outputs are free text;
- and exactly: values registered with `Redactor.register` (the API key the operator loaded),
  with their base64 and URL-encoded forms (a Kubernetes Secret shows its values in base64).

Redact before you truncate: a secret cut in half by `truncate` may no longer look like one.
"""

from __future__ import annotations

import base64
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from enum import Enum
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

REDACTED = "[REDACTED]"

# Words that make a key name a secret. Plural "tokens" is deliberately absent: model usage
# fields (max_tokens, input_tokens) are numbers worth keeping.
_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "credential",
        "credentials", "authorization", "cookie", "apikey", "privatekey", "accesskey",
    }
)  # fmt: skip
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
# A key ending in one of these names or points at a secret (secretName, token_file,
# passwordRef): the value is a reference worth keeping; nested values are still checked.
_REFERENCE_WORDS = frozenset({"name", "names", "ref", "refs", "file", "path", "type", "kind"})

_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

# Secret shapes in free text, applied in this order (the specific before the generic).
_KEY_NAMES = (
    r"authorization|proxy-authorization|x-api-key|api[_-]?key|apikey|access[_-]?token|"
    r"refresh[_-]?token|auth[_-]?token|token|client[_-]?secret|secret[_-]?key|secret|"
    r"password|passwd|pwd|passphrase|private[_-]?key|aws_secret_access_key"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys; an unterminated block (cut by a budget) is masked to the end.
    (
        re.compile(
            r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?:.*?-----END \1PRIVATE KEY-----|.*\Z)",
            re.DOTALL,
        ),
        REDACTED,
    ),
    # No word boundary before sk-ant-: glued to other text (ANTHROPIC_KEY_sk-ant-...) it is
    # still a key, and the prefix is distinctive enough to stand alone.
    (re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{20,}"), REDACTED),  # other vendors' keys
    (re.compile(r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{20,}"), REDACTED),  # GitHub
    (re.compile(r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9\-]{10,}"), REDACTED),  # Slack
    (
        re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}"),
        REDACTED,
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1 {REDACTED}"),
    # "Basic" only with something base64-like after it (a digit, a symbol, an inner capital),
    # so that prose such as "Basic troubleshooting" survives.
    (
        re.compile(r"\bBasic\s+(?=[A-Za-z0-9+/]*(?:[0-9+/=]|[a-z][A-Z]))[A-Za-z0-9+/]{8,}={0,2}"),
        f"Basic {REDACTED}",
    ),
    # scheme://user:password@host; greedy to the last @ so a password holding '@' or '/'
    # is masked whole (over-masking a path is the safe mistake).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s:/?#@\"'<>]*:[^\s\"'<>]*@"), rf"\1{REDACTED}@"),
)

# name: value / name=value in logs, configs, headers, dict reprs and (escaped) JSON text.
_ASSIGNMENT = re.compile(
    rf"(?i)(?<![A-Za-z0-9])({_KEY_NAMES})(?![A-Za-z0-9])(\\?[\"']?\s*[:=]\s*)"
    r"(\\?\"[^\"\n]*\"|'[^'\n]*'|(?:(?:bearer|basic|token|digest)\s+)?[^\s\"',;&}\\]+)"
)


def _mask_assignment(match: re.Match[str]) -> str:
    value = match.group(3)
    # Keep the quotes, so that redacting twice changes nothing and JSON text stays JSON.
    quote_ = next((q for q in ('\\"', '"', "'") if value.startswith(q)), "")
    return f"{match.group(1)}{match.group(2)}{quote_}{REDACTED}{quote_}"


def _key_is_secret(key: str) -> bool:
    words = _NON_ALNUM.split(_CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", key)).lower())
    words = [w for w in words if w]
    if not words or words[-1] in _REFERENCE_WORDS:
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def _encodings(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        quote(secret, safe=""),
    }


class Redactor:
    """Masks secrets by key name, by shape, and by exact value for registered ones.

    Holds its registered secrets itself (no module state), so each operator process and each
    test has its own. Safe to share between threads: `register` swaps in a new tuple.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._exact: tuple[str, ...] = ()
        for secret in secrets:
            self.register(secret)

    def register(self, secret: str) -> None:
        """Mask this exact value (and its base64 and URL-encoded forms) from now on.

        An empty value hides nothing and is ignored, so an unset environment variable can be
        registered without a check at every call site.
        """
        if not secret.strip():
            return
        found = set(self._exact) | _encodings(secret)
        # Longest first, so a secret containing another is masked whole.
        self._exact = tuple(sorted(found, key=len, reverse=True))

    def redact_text(self, text: str) -> str:
        for secret in self._exact:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return _ASSIGNMENT.sub(_mask_assignment, text)

    def redact(self, value: Any) -> Any:
        """A redacted deep copy of `value`, as plain JSON data.

        Mappings become dicts (keys as strings), sequences and sets become lists, pydantic
        models their JSON dump, datetimes ISO strings, bytes text; anything else its str().
        Non-finite floats become strings and lone surrogates are replaced, so the result can
        be written as JSON anywhere: an audit line, an Incident status, an Event.
        """
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str):
            return self.redact_text(_valid_unicode(value))
        if isinstance(value, Mapping):
            return self._redact_mapping(value)
        if isinstance(value, list | tuple | set | frozenset):
            return [self.redact(item) for item in value]
        if isinstance(value, BaseModel):
            return self.redact(value.model_dump(mode="json"))
        if isinstance(value, datetime | date | time):
            return value.isoformat()
        if isinstance(value, Enum):
            return self.redact(value.value)
        if isinstance(value, bytes | bytearray):
            return self.redact(bytes(value).decode("utf-8", errors="replace"))
        return self.redact(str(value))

    def _redact_mapping(self, value: Mapping[Any, Any]) -> dict[str, Any]:
        # A Kubernetes Secret read by a tool: its values are the secrets, whatever the keys.
        is_k8s_secret = value.get("kind") == "Secret" and "apiVersion" in value
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = self.redact_text(_valid_unicode(str(key)))
            if is_k8s_secret and key in ("data", "stringData") and isinstance(item, Mapping):
                out[name] = {self.redact(str(k)): REDACTED for k in item}
            elif item not in (None, "") and _key_is_secret(str(key)):
                out[name] = REDACTED
            else:
                out[name] = self.redact(item)
        return out


def _valid_unicode(text: str) -> str:
    # A lone surrogate (from a surrogateescape'd file name, say) cannot be encoded as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")
    return text


redact = Redactor().redact
"""Pattern and key-name redaction only; use a `Redactor` to also mask registered secrets."""


def truncate(text: str, budget: int) -> str:
    """`text` if it fits in `budget` characters; else its head and tail around a marker that
    says how many characters were cut. The result fits the budget unless the budget is
    smaller than the marker itself."""
    if budget < 0:
        raise ValueError(f"budget must be >= 0, not {budget}")
    if len(text) <= budget:
        return text
    # Size the marker for the largest possible count, so the real one can only be shorter.
    keep = max(budget - len(_marker(len(text))), 0)
    head = (keep + 1) // 2
    tail = keep - head
    return text[:head] + _marker(len(text) - keep) + (text[-tail:] if tail else "")


def _marker(cut: int) -> str:
    return f"\n[... {cut} characters cut ...]\n"
