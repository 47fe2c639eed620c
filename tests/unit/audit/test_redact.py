"""Secrets are masked at any depth, by key name, by shape and by registered value; the rest
survives; text is clipped to a budget with the cut counted."""

import base64
import math
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from aiops.redact import REDACTED, Redactor, redact, truncate

ANTHROPIC_KEY = "sk-ant-api03-FAKEFAKEFAKEFAKEFAKE_fake-FAKE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmYWtlIn0.ZmFrZXNpZ25hdHVyZQ"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEfakefakefake\nfakefake==\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"using key {ANTHROPIC_KEY} now", ANTHROPIC_KEY),
        (f"ANTHROPIC_KEY_{ANTHROPIC_KEY}", ANTHROPIC_KEY),
        ("curl -H 'Authorization: Bearer fake0token0value0abc' http://pd", "fake0token0value0abc"),
        ("Authorization: Basic ZmFrZTpmYWtlcGFzcw==", "ZmFrZTpmYWtlcGFzcw"),
        ("redis://default:hunter2fake@redis:6379/0", "hunter2fake"),
        ("https://bob:p@ss/w0rd@prom.example:9090/api", "p@ss/w0rd"),
        ("aws id AKIAFAKEFAKEFAKEFAKE in env", "AKIAFAKEFAKEFAKEFAKE"),
        ("aws_secret_access_key = fakeFAKEfake/FAKEfakeFAKEfake+FAKEfakeFAK", "fakeFAKEfake/"),
        (f"key file:\n{PEM}\nend", "MIIEfakefakefake"),
        (f"{PEM[:40]}", "MIIE"),  # cut by a budget: still masked to the end
        (f"cookie={JWT}; path=/", JWT),
        ("DB_PASSWORD=fakepass123 ./run", "fakepass123"),
        ('{"password": "fake pass phrase"}', "fake pass phrase"),
        ("{'api_key': 'fakeapikey'}", "fakeapikey"),
        ('{\\"token\\": \\"faketokenvalue\\"}', "faketokenvalue"),
        ("client_secret: fakeclientsecret", "fakeclientsecret"),
        ("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE", "FAKEFAKEFAKEFAKEFAKE"),
    ],
)
def test_secret_shapes_in_text_are_masked(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens: 1024, input_tokens=17",
        "Basic troubleshooting: the token expired, the secret rotated",
        "http://pd.tikv.svc:2379/pd/api/v1/stores",
        "kind: Secret\nmetadata:\n  name: aiops-anthropic",
        "task-0123456789abcdefghijklmnop finished",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_secret_keys_are_masked_at_any_depth_and_the_rest_is_kept() -> None:
    data: dict[str, Any] = {
        "request": {
            "headers": {"Authorization": "Bearer x", "x-api-key": "k", "Accept": "json"},
            "body": {"max_tokens": 1024, "model": "claude-x"},
        },
        "env": [{"name": "PGPASSWORD", "value": "v"}, {"DB_PASSWORD": "p", "HOME": "/root"}],
        "apiKey": "k2",
        "privateKey": {"pem": "nested whole"},
        "spec": {"apiKeySecretRef": {"name": "aiops-anthropic", "key": "api-key"}},
        "secretName": "aiops-anthropic",
        "token": None,
    }
    out = redact(data)
    assert out["request"]["headers"] == {
        "Authorization": REDACTED,
        "x-api-key": REDACTED,
        "Accept": "json",
    }
    assert out["request"]["body"] == {"max_tokens": 1024, "model": "claude-x"}
    assert out["env"][1] == {"DB_PASSWORD": REDACTED, "HOME": "/root"}
    assert out["apiKey"] == REDACTED
    assert out["privateKey"] == REDACTED
    # References to secrets are not secrets: keep them, they say where the key came from.
    assert out["spec"] == data["spec"]
    assert out["secretName"] == "aiops-anthropic"
    assert out["token"] is None
    assert data["request"]["headers"]["Authorization"] == "Bearer x"  # input untouched


def test_a_kubernetes_secret_read_by_a_tool_keeps_its_keys_but_not_its_values() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "data": {"user": base64.b64encode(b"admin").decode(), "pw": "ZmFrZQ=="},
    }
    assert redact(secret)["data"] == {"user": REDACTED, "pw": REDACTED}
    assert redact(secret)["metadata"] == {"name": "db"}


def test_registered_secrets_are_masked_with_their_encodings() -> None:
    redactor = Redactor()
    redactor.register("opaque-fake-value-42")
    redactor.register("")  # an unset variable: ignored, masks nothing
    encoded = base64.b64encode(b"opaque-fake-value-42").decode()
    out = redactor.redact(
        {"log": "connected with opaque-fake-value-42 ok", "b64": f"data: {encoded}", "n": 3}
    )
    assert out == {"log": f"connected with {REDACTED} ok", "b64": f"data: {REDACTED}", "n": 3}
    # The pattern-only default knows nothing of it.
    assert "opaque-fake-value-42" in redact("opaque-fake-value-42")


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), max_size=40),
    st.sampled_from([ANTHROPIC_KEY, "registered-fake-secret"]),
)
def test_a_secret_never_survives_whatever_surrounds_it(
    before: str, after: str, secret: str
) -> None:
    redactor = Redactor(["registered-fake-secret"])
    out = redactor.redact({"k": [f"{before}{secret}{after}"]})
    assert secret not in out["k"][0]


class Colour(Enum):
    RED = "red"


class Model(BaseModel):
    password: str
    when: datetime


def test_the_result_is_plain_json() -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    out = redact(
        {
            "model": Model(password="fake", when=when),
            "tuple": (1, 2),
            "set": {3},
            "when": when,
            "colour": Colour.RED,
            "bytes": b"ok \xff",
            "nan": math.nan,
            "surrogate": "bad \udc80 name",
            5: "int key",
        }
    )
    assert out == {
        "model": {"password": REDACTED, "when": "2024-05-01T00:00:00Z"},
        "tuple": [1, 2],
        "set": [3],
        "when": "2024-05-01T00:00:00+00:00",
        "colour": "red",
        "bytes": "ok \ufffd",
        "nan": "nan",
        "surrogate": "bad ? name",
        "5": "int key",
    }


def test_redacting_twice_changes_nothing() -> None:
    text = 'Authorization: Bearer fake0token0value {"password": "x"} redis://u:p@h'
    once = redact(text)
    assert redact(once) == once


def test_truncate_keeps_short_text() -> None:
    assert truncate("short", 5) == "short"


def test_truncate_keeps_head_and_tail_and_counts_the_cut() -> None:
    text = "HEAD" + "x" * 1000 + "TAIL"
    out = truncate(text, 100)
    assert len(out) <= 100
    assert out.startswith("HEAD") and out.endswith("TAIL")
    kept = len(out) - len(out[out.index("\n[") : out.index("]\n") + 2])
    assert f"[... {len(text) - kept} characters cut ...]" in out


@given(st.text(max_size=300), st.integers(min_value=0, max_value=400))
def test_truncate_fits_the_budget_and_accounts_for_every_character(text: str, budget: int) -> None:
    out = truncate(text, budget)
    if len(text) <= budget:
        assert out == text
        return
    marker_start = out.index("\n[... ")
    marker_end = out.index(" characters cut ...]\n", marker_start)
    cut = int(out[marker_start + 6 : marker_end])
    head, tail = out[:marker_start], out[marker_end + len(" characters cut ...]\n") :]
    assert len(head) + len(tail) + cut == len(text)
    assert text.startswith(head) and text.endswith(tail)
    assert len(out) <= max(budget, len(f"\n[... {len(text)} characters cut ...]\n"))


def test_truncate_refuses_a_negative_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        truncate("x", -1)
