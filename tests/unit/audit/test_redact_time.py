"""Redaction runs in time linear in its input, whatever the input: a megabyte of text crafted
against each pattern is redacted in well under two seconds.

The inputs are redacted in a child process with a timeout, so that a pattern that backtracks
(no signal interrupts the regex engine) fails the test instead of hanging it. Run this module
to print the timings for 10 KB, 100 KB and 1 MB, which show the growth is linear:

    .venv/bin/python -m tests.unit.audit.test_redact_time
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda size: (unit * (size // len(unit) + 1))[:size]


def _then(head: str, unit: str) -> Callable[[int], str]:
    return lambda size: head + _repeat(unit)(max(size - len(head), 0))


# Text crafted against each pattern: what makes a backtracking engine rescan the rest of the
# text from every position, or try many ways to split a run.
ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "url: dotted run (a.a.a...)": _repeat("a."),
    "url: scheme:// and user: no @": _repeat("a://a:"),
    "url: one scheme, long run": _then("x://", "y:"),
    "url: many @, no scheme": _repeat("a:b@"),
    "url: :// glued": _repeat("://"),
    "pem: BEGIN without END": _then("-----BEGIN RSA PRIVATE KEY-----\n", "QUJD"),
    "pem: BEGIN repeated": _repeat("-----BEGIN "),
    "pem: BEGIN A A A": _then("-----BEGIN ", "A "),
    "jwt: eyJ run": _repeat("eyJaaaaa-"),
    "jwt: eyJ.eyJ chain": _repeat("eyJaaaaa.eyJbbbbb."),
    "bearer: repeated": _repeat("bearer "),
    "bearer: spaces": _then("Bearer", " "),
    "basic: long run": _then("Basic ", "a"),
    "basic: repeated": _repeat("Basic aaaaaaa "),
    "redis: AUTH repeated": _repeat("AUTH "),
    "redis: quoted auth open": _repeat('"auth" "'),
    "redis: requirepass repeated": _repeat("requirepass "),
    "redis: indented requirepass": _then("\n", " requirepass"),
    "redis-cli: no -a": _repeat("redis-cli "),
    "redis-cli: -a without value": _then("redis-cli", " -a"),
    "assignment: password= run": _repeat("password="),
    'assignment: password:" unclosed': _repeat('password:"'),
    "assignment: key then spaces": _then("password", " "),
    "assignment: many keys": _repeat("a: b\n"),
    "assignment: long key": _repeat("x_pass"),
    "assignment: dashes": _repeat("-"),
    "describe: secret keys, no blank line": _then("x", "\nPASSWORD:\n----\nv"),
    "describe: dashes": _repeat("a:\n----\n"),
    "json args: flag repeated": _repeat('"--password",'),
    "json args: unclosed value": _repeat('"--password","'),
    "line args: yaml flags": _repeat("- --password\n"),
    "line args: bare flags": _repeat("  --password\n"),
    "line args: redis-cli -a": _then("- redis-cli\n", "- -a\n"),
    "embedded json: brackets": _repeat("[{"),
    "flag: --password repeated": _repeat("--password "),
    "flag: --a--a": _repeat("--a"),
    "env: name: repeated": _repeat("name: A_PASSWORD "),
    "env: name then blanks": _then("name: DB_TOKEN", " "),
    "env: value then blanks": _then("value: x", " "),
    "env: value, repeated": _repeat("value: x, "),
    "env: JSON pairs": _repeat('{"name": "A_PASSWORD", "value": "v"},'),
    "vendor keys: sk- run": _repeat("sk-"),
    "vendor keys: sk-ant- run": _repeat("sk-ant-"),
    "plain: letters": _repeat("a"),
    "plain: words": _repeat("lorem ipsum "),
    "plain: quotes": _repeat('"'),
    "plain: colons and equals": _repeat(":="),
    "plain: newlines": _repeat("\n"),
    "registered: near misses": _repeat("registered-fake-secret-valu"),
    "json: a pod list": _repeat(
        '{"name": "REDIS_PASSWORD", "value": "x"}, "image": "redis:7", "args": '
        '["--requirepass", "y"], "url": "redis://u:p@h:6379",\n'
    ),
}

SIZES = (10_000, 100_000, 1_000_000)
LIMIT_S = 2.0  # for one megabyte, on a loaded two-core machine
CHILD_TIMEOUT_S = 180  # for all of them; each takes well under a second


def measure(size: int, names: list[str] | None = None) -> dict[str, float]:
    """Seconds to redact each adversarial text of `size` characters (this process)."""
    from aiops.redact import Redactor

    redactor = Redactor(["registered-fake-secret-value"])
    out: dict[str, float] = {}
    for name in names or list(ADVERSARIAL):
        text = ADVERSARIAL[name](size)
        started = time.perf_counter()
        redactor.redact_text(text)
        out[name] = time.perf_counter() - started
    return out


def report(size: int) -> None:
    """Print one JSON line [name, seconds] per adversarial input, as each is done."""
    for name in ADVERSARIAL:
        print(json.dumps([name, measure(size, [name])[name]]), flush=True)


@pytest.fixture(scope="module")
def megabyte_timings() -> dict[str, float]:
    """Seconds per adversarial input of 1 MB, measured in a child process that is killed
    after CHILD_TIMEOUT_S: what it finished by then is what was measured."""
    code = f"from tests.unit.audit.test_redact_time import report; report({1_000_000})"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=True,
        )
        out = proc.stdout
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
    return {name: seconds for name, seconds in map(json.loads, out.splitlines())}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_a_megabyte_of_adversarial_text_is_redacted_in_bounded_time(
    name: str, megabyte_timings: dict[str, float]
) -> None:
    if name not in megabyte_timings:
        pytest.fail(
            f"{name}: not measured within {CHILD_TIMEOUT_S}s: redacting it (or an "
            "input before it) backtracks"
        )
    seconds = megabyte_timings[name]
    assert seconds < LIMIT_S, f"{name}: redacting 1 MB took {seconds:.2f}s"


def main() -> None:
    rows = {size: measure(size) for size in SIZES}
    print(f"{'adversarial input':36}" + "".join(f"{s // 1000:>9} KB" for s in SIZES))
    for name in ADVERSARIAL:
        print(f"{name:36}" + "".join(f"{rows[s][name]:11.4f}s" for s in SIZES))


if __name__ == "__main__":
    main()
