"""Masking secrets before anything is written down, and clipping text to a budget.

Everything the operator records or sends (audit records, Incident status, Events, its own
logs, the model's requests) goes through a `Redactor` first. Three rules, applied to every
string at any depth:

- by name: the value under a key that names a secret is replaced whatever it looks like. A
  key names a secret when one of its words is one (`password`, `token`, `secret`,
  `credential`, `authorization`, `cookie`, ...), when one of its words contains `password` or
  `passwd` (`PGPASSWORD`), or when it ends in `pass`, `auth` or `key` (`REDIS_PASS`,
  `masterauth`, `AWS_SECRET_KEY`, but not `monkey`, `primaryKey` or `idempotencyKey`); a key
  ending in `name`, `ref`, `file`, ... only points at a secret and is kept. The same rule
  masks the `value` of a `{name: REDIS_PASSWORD, value: ...}` pair (container env, HTTP
  headers), the argument after a flag such as `--requirepass`, and `key: value`,
  `key=value`, `"key": "value"` in free text;
- by shape: text that looks like a credential (an Anthropic or other vendor's key, a bearer
  token, the user:password of a URL, an AWS access key id, a PEM private key, a JWT, a Redis
  `AUTH` command, `requirepass`/`masterauth` lines) is masked wherever it appears;
- and exactly: values registered with `Redactor.register` (the API key the operator loaded),
  with their URL-encoded and base64 forms, the latter also where the secret sits at any
  offset inside larger base64 data (a Kubernetes Secret or a config file encoded whole).

Every pattern runs in time linear in the text: each is anchored on a distinctive literal or
on the start of a run of characters (a lookbehind), and every repetition after the anchor is
either bounded or cannot overlap the next one, so no crafted text makes the engine backtrack
over it more than a bounded number of times. tests/unit/audit/test_redact_time.py feeds them
a megabyte of adversarial text each; `python -m tests.unit.audit.test_redact_time` prints the
timings for 10 KB, 100 KB and 1 MB.

Redact before you truncate: a secret cut in half by `truncate` may no longer look like one.
To bound the cost of redacting unbounded input, `clip` it first: it cuts at line boundaries,
so that no line is left half (and its secret half-visible) at the cut.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from enum import Enum
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

REDACTED = "[REDACTED]"

# -- key names -------------------------------------------------------------------------------

# A key with one of these words is a secret. Plural "tokens" is deliberately absent: model
# usage fields (max_tokens, input_tokens) are numbers worth keeping.
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "credential",
        "credentials",
        "authorization",
        "cookie",
        "apikey",
        "privatekey",
        "accesskey",
        "secretkey",
        "requirepass",
        "masterauth",
        "passcode",
    }
)
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
# A word containing one of these is a secret (PGPASSWORD, MYSQLPASSWD).
_SECRET_STEMS = ("password", "passwd")
# A key ending in these (REDIS_PASS, MASTER_AUTH, dbpass, SIGNING_KEY) is a secret; "key"
# only after another word, since a lone `key` names a key (secretKeyRef.key, tolerations).
_SECRET_SUFFIXES = ("pass", "auth")
# Words before "key" that make it an identifier, not a credential.
_PLAIN_KEY_QUALIFIERS = frozenset(
    {
        "public",
        "primary",
        "foreign",
        "sort",
        "partition",
        "cache",
        "routing",
        "idempotency",
        "dedup",
        "dedupe",
        "shard",
        "hash",
        "lookup",
        "index",
        "row",
        "label",
        "annotation",
        "group",
        "topology",
        "map",
        "object",
        "field",
        "column",
        "join",
        "composite",
        "unique",
        "natural",
        "surrogate",
    }
)
# Words ending in pass/auth that say nothing about a secret.
_PLAIN_WORDS = frozenset(
    {"bypass", "compass", "surpass", "overpass", "underpass", "trespass", "encompass", "oauth"}
)
# A key ending in one of these names or points at a secret (secretName, token_file,
# passwordRef): the value is a reference worth keeping; nested values are still checked.
_REFERENCE_WORDS = frozenset(
    {
        "name",
        "names",
        "ref",
        "refs",
        "file",
        "path",
        "type",
        "kind",
        "mode",
        "enabled",
        "required",
        "method",
        "ttl",
        "expiry",
        "expires",
        "length",
        "policy",
        "source",
        "from",
    }
)

_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=4096)
def key_is_secret(key: str) -> bool:
    """Whether the value under this key (or env var, header, flag name) is a secret."""
    if len(key) > 128:
        return False
    words = _NON_ALNUM.split(_CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", key)).lower())
    words = [w for w in words if w]
    if not words or words[-1] in _REFERENCE_WORDS:
        return False
    if any(w in _SECRET_WORDS or any(s in w for s in _SECRET_STEMS) for w in words):
        return True
    if any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words)):
        return True
    last = words[-1]
    if last.endswith(_SECRET_SUFFIXES) and last not in _PLAIN_WORDS:
        return True
    return last == "key" and len(words) > 1 and words[-2] not in _PLAIN_KEY_QUALIFIERS


# -- shapes in free text ---------------------------------------------------------------------

_B64 = r"A-Za-z0-9+/"
# A value after `key:` / `key=` / `name: X, value:`: a quoted string (JSON, escaped JSON in a
# JSON string, or single quotes) or a bare word. After a colon (YAML, headers) a bare value
# runs to the end of the line: "password: my pass phrase" is one value.
_QUOTED = r"""\\?"[^"\n]*"|'[^'\n]*'"""
_BARE_WORD = r"""[^\s"',;&}{\[\\]+"""
_BARE_LINE = r"""[^\s"',;&}{\[\\][^\n"',;&}\\]*"""

# Most patterns below start with a literal and check the character before it with a
# lookbehind placed *after* the literal: the engine then jumps from one occurrence of the
# literal to the next instead of trying a lookbehind at every position of the text.

# Credentials recognisable by their shape alone, masked whole.
_TOKENS = re.compile(
    "|".join(
        (
            # No boundary before sk-ant-: glued to other text (ANTHROPIC_KEY_sk-ant-...) it
            # is still a key, and the prefix is distinctive enough to stand alone.
            r"sk-ant-[A-Za-z0-9_\-]{8,}+",
            r"sk-(?<![A-Za-z0-9]sk-)[A-Za-z0-9_\-]{20,}+",  # other vendors' keys
            r"[sr]k_(?<![A-Za-z0-9].k_)(?:live|test)_[A-Za-z0-9]{16,}+",  # Stripe
            r"gh[pousr]_(?<![A-Za-z0-9]gh._)[A-Za-z0-9]{20,}+",  # GitHub
            r"github_pat_(?<![A-Za-z0-9]github_pat_)[A-Za-z0-9_]{20,}+",
            r"glpat-(?<![A-Za-z0-9]glpat-)[A-Za-z0-9_\-]{20,}+",  # GitLab
            r"xox[abprs]-(?<![A-Za-z0-9]xox.-)[A-Za-z0-9\-]{10,}+",  # Slack
            r"AIza(?<![A-Za-z0-9]AIza)[0-9A-Za-z_\-]{35}",  # Google
            r"npm_(?<![A-Za-z0-9]npm_)[A-Za-z0-9]{36}",
            r"A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)(?<![A-Za-z0-9]A...)[A-Z0-9]{16}",  # AWS ids
            # A JWT starts a run of base64url: starting mid-run would rescan the run from
            # every "eyJ" in it.
            r"eyJ(?<![A-Za-z0-9_\-]eyJ)[A-Za-z0-9_\-]{5,}+\.eyJ[A-Za-z0-9_\-]{5,}+"
            r"\.[A-Za-z0-9_\-]*+",
        )
    )
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys (PGP blocks too); an unterminated block (cut by a budget) is masked to
    # the end. Starts only at the literal; the lazy scan is for its own END line.
    (
        re.compile(
            r"-----BEGIN ([A-Z0-9 ]{0,40})PRIVATE KEY( BLOCK)?-----"
            r"(?:.*?-----END \1PRIVATE KEY\2-----|.*\Z)",
            re.DOTALL,
        ),
        REDACTED,
    ),
    (_TOKENS, REDACTED),
    (
        re.compile(r"(?i)(bearer)(?<![A-Za-z0-9_]bearer)[ \t]{1,16}+[A-Za-z0-9\-._~+/]{8,}+=*+"),
        rf"\1 {REDACTED}",
    ),
    # "Basic" only with something base64-like after it (a digit, a symbol, an inner capital),
    # so that prose such as "Basic troubleshooting" survives.
    (
        re.compile(
            rf"Basic(?<![A-Za-z0-9_]Basic)[ \t]{{1,16}}(?=[{_B64}]*(?:[0-9+/=]|[a-z][A-Z]))"
            rf"[{_B64}]{{8,}}={{0,2}}"
        ),
        f"Basic {REDACTED}",
    ),
    # Redis: `AUTH [user] password` as typed or logged (upper case only, so that prose such as
    # "auth failed" survives), and MONITOR's quoted `"auth" "[user]" "pw"` (JSON-escaped too).
    (
        re.compile(
            r"AUTH(?<![A-Za-z0-9_]AUTH)"
            r"""(?:[ \t]{1,8}(?:"[^"\n]*+"|'[^'\n]*+'|[^\s"']++)){1,2}"""
        ),
        f"AUTH {REDACTED}",
    ),
    (
        re.compile(r'(?i)"(auth)(\\?)"(?:[ \t]{1,8}\\?"[^"\n]*?\\?"){1,2}'),
        rf'"\1\2" \2"{REDACTED}\2"',
    ),
)

# redis.conf and CONFIG SET: `requirepass <pw>`, `masterauth <pw>`, with a blank, no `=`;
# `_mask_directive` checks what comes before.
_DIRECTIVE = re.compile(
    r"(?i)(requirepass|masterauth)"
    rf"([ \t]{{1,16}})({_QUOTED}|{_BARE_WORD})"
)
# redis-cli -a <pw>
_REDIS_CLI_A = re.compile(rf"-a(?<![A-Za-z0-9_\-]-a)([ \t]{{1,8}})({_QUOTED}|{_BARE_WORD})")

_KEY = r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}"
# `key` (or `--key`) then `:` or `=`; the value is matched separately (see `_mask_assignments`).
_ASSIGNMENT = re.compile(
    rf"(?<![A-Za-z0-9_.\-])(-{{0,2}}{_KEY})(?![A-Za-z0-9_.\-])"
    rf"(\\?[\"']?[ \t]{{0,16}}([:=])[ \t]{{0,16}})"
)
_VALUE_AFTER_COLON = re.compile(
    rf"{_QUOTED}|(?:(?:bearer|basic|token|digest)[ \t]+)?{_BARE_LINE}", re.IGNORECASE
)
_VALUE_AFTER_EQUALS = re.compile(
    rf"{_QUOTED}|(?:(?:bearer|basic|token|digest)[ \t]+)?{_BARE_WORD}", re.IGNORECASE
)
# `--password value`, `--db-token value` (with `=`, `_ASSIGNMENT` has it).
_FLAG = re.compile(rf"--(?<![A-Za-z0-9_\-]--)({_KEY})([ \t]{{1,8}})(?!-)({_QUOTED}|[^\s\"']+)")
# {name: REDIS_PASSWORD, value: ...} as YAML, JSON (pretty or not, escaped or not), a Python
# repr; the value first too. At most 300 blanks and commas between the two, so a failed
# attempt costs a bounded scan.
_Q = r"""\\?["']?"""
_SEP = r"[ \t]{0,16}[:=][ \t]{0,16}"
_ENV_NAME_FIRST = re.compile(
    rf"(name(?<![A-Za-z0-9_]name){_Q}{_SEP}{_Q})({_KEY})({_Q}[\s,]{{0,300}}{_Q}value{_Q}{_SEP})"
    rf"({_QUOTED}|{_BARE_LINE})"
)
_ENV_VALUE_FIRST = re.compile(
    rf"(value(?<![A-Za-z0-9_]value){_Q}{_SEP})({_QUOTED}|[^\s\"',}}{{\[\\][^\n\"',}}\\]*+)"
    rf"([\s,]{{0,300}}{_Q}name{_Q}{_SEP}{_Q})({_KEY})"
)
# An argument vector as JSON text (escaped or not): `"--requirepass", "pw"`, `"-a","pw"`.
_JSON_ARGUMENT = re.compile(
    r'"(-{1,2}[A-Za-z][A-Za-z0-9_.\-]{0,127}|(?i:requirepass|masterauth)|AUTH)'
    r'(\\?"[ \t]{0,16},\s{0,64}\\?")((?:[^"\\\n]|\\(?!"))*+)'
)
# The same one a line, at the same indentation: a YAML block sequence (`- --requirepass`,
# `- pw`), `kubectl describe`'s Args and Command (`--requirepass`, `pw`).
_LINE_ARGUMENT = re.compile(
    r"(?m)^([ \t]{0,64}(?:- )?)"
    r"(-{1,2}[A-Za-z][A-Za-z0-9_.\-]{0,127}|(?i:requirepass|masterauth)|AUTH)"
    r"([ \t]{0,16}\n)\1([^\n]+)"
)
# `kubectl describe configmap` prints a key, a line of dashes, then the value's lines.
_DESCRIBED_KEY = re.compile(rf"(?m)^({_KEY}):[ \t]{{0,16}}\n----\n")
# A run of characters that could hold a URL: `_mask_url` looks inside those with "://". It
# starts only where a run starts, so each character is looked at a bounded number of times.
_URL_RUN = re.compile(r"(?<![^\s\"'<>])[^\s\"'<>]*?://[^\s\"'<>]*")
_USERINFO_END = re.compile(r"[:/?#@]")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def _masked(value: str) -> str:
    # Keep the quotes, so that redacting twice changes nothing and JSON text stays JSON.
    quote_ = next((q for q in ('\\"', '"', "'") if value.startswith(q)), "")
    return f"{quote_}{REDACTED}{quote_}"


# Values no secret takes: a flag such as `automountServiceAccountToken: false` stays readable.
_NOT_SECRET_VALUES = frozenset({"true", "false", '"true"', '"false"'})


def _mask_assignments(text: str) -> str:
    """`key: value` and `key=value` with a secret key: the value masked. Only a secret key's
    value is consumed, so that `url: http://x password: y` still reaches `password`."""
    out: list[str] = []
    emit = 0
    for match in _ASSIGNMENT.finditer(text):
        if match.start() < emit or not key_is_secret(match.group(1)):
            continue
        pattern = _VALUE_AFTER_COLON if match.group(3) == ":" else _VALUE_AFTER_EQUALS
        value = pattern.match(text, match.end())
        if value is None or value.group().lower() in _NOT_SECRET_VALUES:
            continue
        out += [text[emit : match.end()], _masked(value.group())]
        emit = value.end()
    if not out:
        return text
    out.append(text[emit:])
    return "".join(out)


def _mask_directive(match: re.Match[str]) -> str:
    """`requirepass <pw>` where a directive stands: at the start of a line (or of a JSON
    string, or after an escaped newline in one), after `CONFIG SET`, or as `--requirepass`;
    not in prose ("the requirepass directive")."""
    text, at = match.string, match.start()
    lo = max(at - 64, 0)
    while at > lo and text[at - 1] in " \t":
        at -= 1
    if (
        at == 0
        or text[at - 1] in "\n\"'"
        or text[max(at - 2, 0) : at] in ("\\n", "--")
        or text[max(at - 3, 0) : at].lower() == "set"
    ):
        return f"{match.group(1)}{match.group(2)}{_masked(match.group(3))}"
    return match.group()


def _mask_redis_cli_password(match: re.Match[str]) -> str:
    """`-a <pw>` in a redis-cli command line."""
    if not _after_redis_cli(match.string, match.start()):
        return match.group()
    return f"-a{match.group(1)}{_masked(match.group(2))}"


def _after_redis_cli(text: str, at: int) -> bool:
    """Whether `redis-cli` comes before `at` on its line (at most 512 characters back)."""
    lo = max(at - 512, 0)
    line = text.rfind("\n", lo, at)
    return text.find("redis-cli", line + 1 if line >= 0 else lo, at) >= 0


def _mask_described_values(text: str) -> str:
    """The value under a secret key in `kubectl describe` output: up to the next blank line."""
    out: list[str] = []
    emit = 0
    for match in _DESCRIBED_KEY.finditer(text):
        if match.start() < emit or not key_is_secret(match.group(1)):
            continue
        end = text.find("\n\n", match.end())
        end = len(text) if end < 0 else end
        out += [text[emit : match.end()], REDACTED]
        emit = end
    if not out:
        return text
    out.append(text[emit:])
    return "".join(out)


def _mask_json_argument(match: re.Match[str]) -> str:
    name = match.group(1)
    if name == "-a":
        secret = _after_redis_cli(match.string, match.start())
    elif name.startswith("-"):
        secret = key_is_secret(name)
    else:
        secret = True
    if not secret or not match.group(3):
        return match.group()
    return f'"{name}{match.group(2)}{REDACTED}'


def _mask_line_argument(match: re.Match[str]) -> str:
    name = match.group(2)
    if name == "-a":
        text, at = match.string, match.start()
        secret = text.find("redis-cli", max(at - 512, 0), at) >= 0  # an item a line or two up
    else:
        secret = not name.startswith("-") or key_is_secret(name)
    if not secret:
        return match.group()
    return f"{match.group(1)}{name}{match.group(3)}{match.group(1)}{_masked(match.group(4))}"


def _mask_flag(match: re.Match[str]) -> str:
    if not key_is_secret(match.group(1)):
        return match.group()
    return f"--{match.group(1)}{match.group(2)}{_masked(match.group(3))}"


def _mask_env_name_first(match: re.Match[str]) -> str:
    if not key_is_secret(match.group(2)):
        return match.group()
    return f"{match.group(1)}{match.group(2)}{match.group(3)}{_masked(match.group(4))}"


def _mask_env_value_first(match: re.Match[str]) -> str:
    if not key_is_secret(match.group(4)):
        return match.group()
    return f"{match.group(1)}{_masked(match.group(2))}{match.group(3)}{match.group(4)}"


def _mask_url(match: re.Match[str]) -> str:
    """scheme://user:password@host: masked to the last '@' of the run, so a password holding
    '@' or '/' is masked whole (over-masking a path is the safe mistake)."""
    run = match.group()
    last_at = run.rfind("@")
    search = 0
    while last_at >= 0:
        found = run.find("://", search)
        if found < 0 or found > last_at:
            break
        start = found + 3
        end = _USERINFO_END.search(run, start)
        if (
            found > 0
            and run[found - 1] in _SCHEME_CHARS
            and end is not None
            and end.group() == ":"
            and end.start() < last_at
        ):
            return f"{run[:start]}{REDACTED}{run[last_at:]}"
        # The next "://" begins with ':', so it cannot lie before `end`: linear.
        search = start
    return run


def _encodings(secret: str) -> set[str]:
    raw = secret.encode()
    found = {
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        quote(secret, safe=""),
    }
    # Inside larger base64 data the secret starts at any offset: for each of the three, the
    # characters that encode its whole 3-byte groups only, which appear whatever surrounds it.
    for skip in range(3):
        body = raw[skip:]
        body = body[: len(body) - len(body) % 3]
        if len(body) >= 9:  # 12 characters; fewer could match unrelated base64
            core = base64.b64encode(body).decode()
            found |= {core, core.replace("+", "-").replace("/", "_")}
    return found


class Redactor:
    """Masks secrets by key name, by shape, and by exact value for registered ones.

    Holds its registered secrets itself (no module state), so each operator process and each
    test has its own. Safe to share between threads: `register` swaps in a new tuple. Every
    method runs in time linear in its input; for large input, call it off the event loop.
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
        text = _DIRECTIVE.sub(_mask_directive, text)
        text = _REDIS_CLI_A.sub(_mask_redis_cli_password, text)
        if "://" in text:
            text = _URL_RUN.sub(_mask_url, text)
        text = _ENV_NAME_FIRST.sub(_mask_env_name_first, text)
        text = _ENV_VALUE_FIRST.sub(_mask_env_value_first, text)
        text = _FLAG.sub(_mask_flag, text)
        text = _JSON_ARGUMENT.sub(_mask_json_argument, text)
        text = _LINE_ARGUMENT.sub(_mask_line_argument, text)
        if "\n----\n" in text:
            text = _mask_described_values(text)
        return _mask_assignments(text)

    def redact(self, value: Any, *, clip_at: int | None = None) -> Any:
        """A redacted deep copy of `value`, as plain JSON data.

        Mappings become dicts (keys as strings), sequences and sets become lists, pydantic
        models their JSON dump, datetimes ISO strings, bytes text; anything else its str().
        Non-finite floats become strings and lone surrogates are replaced, so the result can
        be written as JSON anywhere: an audit line, an Incident status, an Event.

        `clip_at`: first `clip` every string to that many characters, which bounds the cost
        of redacting input of unknown size (a log, a command's output).
        """
        return self._redact(value, clip_at)

    def _redact(self, value: Any, clip_at: int | None) -> Any:
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str):
            text = _valid_unicode(value)
            if clip_at is not None:
                text = clip(text, clip_at)
            embedded = _embedded_json(text)
            if embedded is not None:
                # JSON in a string (kubectl's last-applied-configuration, a config value):
                # redacted as data, so its keys and {name, value} pairs count.
                return json.dumps(self._redact(embedded, clip_at), ensure_ascii=False)
            return self.redact_text(text)
        if isinstance(value, Mapping):
            return self._redact_mapping(value, clip_at)
        if isinstance(value, list | tuple | set | frozenset):
            return self._redact_sequence(list(value), clip_at)
        if isinstance(value, BaseModel):
            return self._redact(value.model_dump(mode="json"), clip_at)
        if isinstance(value, datetime | date | time):
            return value.isoformat()
        if isinstance(value, Enum):
            return self._redact(value.value, clip_at)
        if isinstance(value, bytes | bytearray):
            return self._redact(bytes(value).decode("utf-8", errors="replace"), clip_at)
        return self._redact(str(value), clip_at)

    def _redact_mapping(self, value: Mapping[Any, Any], clip_at: int | None) -> dict[str, Any]:
        # A Kubernetes Secret read by a tool: its values are the secrets, whatever the keys.
        is_k8s_secret = value.get("kind") == "Secret" and "apiVersion" in value
        # {name: REDIS_PASSWORD, value: ...}: a container's env var, an HTTP header.
        name = value.get("name")
        pair_is_secret = isinstance(name, str) and "value" in value and key_is_secret(name)
        out: dict[str, Any] = {}
        for key, item in value.items():
            masked = self.redact_text(_valid_unicode(str(key)))
            if is_k8s_secret and key in ("data", "stringData") and isinstance(item, Mapping):
                out[masked] = {self.redact_text(_valid_unicode(str(k))): REDACTED for k in item}
            elif (
                item not in (None, "")
                and not isinstance(item, bool)
                and (key_is_secret(str(key)) or (pair_is_secret and key == "value"))
            ):
                out[masked] = REDACTED
            else:
                out[masked] = self._redact(item, clip_at)
        return out

    def _redact_sequence(self, items: list[Any], clip_at: int | None) -> list[Any]:
        # An argument vector: ["redis-server", "--requirepass", "pw"], ["redis-cli", "-a", "pw"].
        out: list[Any] = []
        redis_cli = False
        for n, item in enumerate(items):
            before = items[n - 1] if n else None
            if (
                isinstance(item, str)
                and isinstance(before, str)
                and (_names_secret_argument(before) or (redis_cli and before == "-a"))
            ):
                out.append(REDACTED)
                continue
            if isinstance(item, str) and item.endswith("redis-cli"):
                redis_cli = True
            out.append(self._redact(item, clip_at))
        return out


def _names_secret_argument(arg: str) -> bool:
    """`--password`, `-requirepass`, `requirepass`, `AUTH`: the next argument is a secret."""
    if arg in ("requirepass", "masterauth", "AUTH"):
        return True
    if not arg.startswith("-") or "=" in arg or len(arg) > 130:
        return False
    return key_is_secret(arg.lstrip("-"))


def _embedded_json(text: str) -> Any:
    """The object or array `text` holds as JSON, if it is one; else None."""
    stripped = text.strip()
    if len(stripped) < 2 or (stripped[0], stripped[-1]) not in (("{", "}"), ("[", "]")):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


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


# How far `clip` looks back (or forward) from a cut for a line break, then for a blank.
_LINE_REACH = 16384
_WORD_REACH = 1024


def clip(text: str, limit: int) -> str:
    """Bound raw text before it is redacted: `text` if it has at most `limit` characters,
    else its head and tail, each cut at a line break (or a blank) near the limit, around a
    marker that says how much was cut. The line at each cut is dropped whole, so a secret on
    it is never shown half (where it might no longer look like one)."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    if len(text) <= limit:
        return text
    half = limit // 2
    head_end = _break_before(text, half)
    tail_start = _break_after(text, len(text) - half)
    if tail_start < head_end:  # pragma: no cover - only with a limit near len(text)
        tail_start = head_end
    cut = tail_start - head_end
    return (
        f"{text[:head_end]}\n[... {cut} characters cut before redaction ...]\n{text[tail_start:]}"
    )


def _break_before(text: str, at: int) -> int:
    found = text.rfind("\n", max(at - _LINE_REACH, 0), at)
    if found < 0:
        found = max(text.rfind(" ", max(at - _WORD_REACH, 0), at), 0)
    return found


def _break_after(text: str, at: int) -> int:
    found = text.find("\n", at, at + _LINE_REACH)
    if found < 0:
        found = text.find(" ", at, at + _WORD_REACH)
        if found < 0:
            return len(text)
    return found + 1
