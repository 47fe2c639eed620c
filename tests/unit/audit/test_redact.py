"""Secrets are masked at any depth, by key name, by shape and by registered value; the rest
survives; text is clipped to a budget with the cut counted."""

import base64
import json
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


# Secret shapes, each with the secret text that must not survive. Every one is a shape that
# tool output (logs, kubectl, configs, pod specs) really carries.
CORPUS: list[tuple[str, str, str]] = [
    ("anthropic key", f"using key {ANTHROPIC_KEY} now", ANTHROPIC_KEY),
    ("anthropic key glued", f"ANTHROPIC_KEY_{ANTHROPIC_KEY}", ANTHROPIC_KEY),
    (
        "bearer header",
        "curl -H 'Authorization: Bearer fake0token0value0abc' http://pd",
        "fake0token0value0abc",
    ),
    (
        "bearer in JSON",
        '{"headers": {"Authorization": "Bearer fake0token0value0abc"}}',
        "fake0token0value0abc",
    ),
    ("basic header", "Authorization: Basic ZmFrZTpmYWtlcGFzcw==", "ZmFrZTpmYWtlcGFzcw"),
    ("other auth scheme", "Authorization: Token fake-token-scheme-value", "fake-token-scheme"),
    ("cookie header", "Cookie: session=fakesessionvalue42", "fakesessionvalue42"),
    ("x-api-key header", "x-api-key: fakeheaderkey123", "fakeheaderkey123"),
    ("url credentials", "redis://default:hunter2fake@redis:6379/0", "hunter2fake"),
    ("url password with @ and /", "https://bob:p@ss/w0rd@prom.example:9090/api", "p@ss/w0rd"),
    ("url credentials in JSON", '{"dsn":"postgres://app:fakepgpass@db:5432/x"}', "fakepgpass"),
    ("aws access key id", "aws id AKIAFAKEFAKEFAKEFAKE in env", "AKIAFAKEFAKEFAKEFAKE"),
    (
        "aws secret key",
        "aws_secret_access_key = fakeFAKEfake/FAKEfakeFAKEfake+FAKEfakeFAK",
        "fakeFAKEfake/",
    ),
    ("pem private key", f"key file:\n{PEM}\nend", "MIIEfakefakefake"),
    ("pem cut by a budget", f"{PEM[:40]}", "MIIE"),
    ("pem, JSON-escaped", PEM.replace("\n", "\\n"), "MIIEfakefakefake"),
    (
        "openssh private key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXk",
    ),
    ("jwt", f"cookie={JWT}; path=/", JWT),
    ("jwt alone", f"token {JWT} used", JWT),
    ("env assignment", "DB_PASSWORD=fakepass123 ./run", "fakepass123"),
    ("json password", '{"password": "fake pass phrase"}', "fake pass phrase"),
    ("python repr", "{'api_key': 'fakeapikey'}", "fakeapikey"),
    ("escaped json", '{\\"token\\": \\"faketokenvalue\\"}', "faketokenvalue"),
    ("yaml client secret", "client_secret: fakeclientsecret", "fakeclientsecret"),
    ("yaml password with blanks", "password: fake pass phrase\nuser: bob", "pass phrase"),
    ("github token", "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE", "FAKEFAKEFAKEFAKEFAKE"),
    ("gitlab token", "glpat-FAKEfakeFAKEfakeFAKE1", "FAKEfakeFAKEfakeFAKE1"),
    ("slack token", "xoxb-000000000-FAKEFAKEFAKE", "FAKEFAKEFAKE"),
    ("stripe key", "sk_live_FAKEfakeFAKEfake1234", "FAKEfakeFAKEfake1234"),
    ("google api key", "AIzaFAKEfakeFAKEfakeFAKEfakeFAKEfake123", "FAKEfakeFAKEfakeFAKEfake"),
    # Kubernetes: env pairs in a pod spec, as YAML, pretty JSON, flow style, value first.
    (
        "env pair, yaml",
        "env:\n- name: REDIS_PASSWORD\n  value: fakeredispw\n- name: X\n",
        "fakeredispw",
    ),
    (
        "env pair, json",
        '"env": [\n  {\n    "name": "REDIS_PASSWORD",\n    "value": "fakeredispw"\n  }\n]',
        "fakeredispw",
    ),
    ("env pair, escaped json", '{\\"name\\":\\"API_TOKEN\\",\\"value\\":\\"faketok\\"}', "faketok"),
    ("env pair, flow", "{name: MASTER_AUTH, value: fakemasterauth}", "fakemasterauth"),
    ("env pair, value first", "- value: fakevaluefirst\n  name: DB_PASS", "fakevaluefirst"),
    (
        "env pair, describe",
        "    Environment:\n      REDIS_PASSWORD:  fakedescribed\n",
        "fakedescribed",
    ),
    (
        "configmap, described",
        "Data\n====\nDB_PASSWORD:\n----\nfakedescribedcm\n\nport:\n----\n6379\n",
        "fakedescribedcm",
    ),
    (
        "http header pair",
        "httpHeaders:\n- name: Authorization\n  value: Token fakehdr\n",
        "fakehdr",
    ),
    ("*_PASS", "REDIS_PASS=fakeredispass ./start", "fakeredispass"),
    ("*_AUTH", "MASTER_AUTH: fakemasterauth", "fakemasterauth"),
    ("*_PASSWD", "MYSQL_PASSWD=fakemysqlpw", "fakemysqlpw"),
    ("*_SECRET", "JWT_SECRET=fakejwtsecret", "fakejwtsecret"),
    ("*_TOKEN", "VAULT_TOKEN: fakevaulttoken", "fakevaulttoken"),
    ("*_KEY", "SIGNING_KEY=fakesigningkey", "fakesigningkey"),
    ("glued password word", "PGPASSWORD=fakepgpassword psql", "fakepgpassword"),
    # Redis.
    ("requirepass line", "port 6379\nrequirepass fakerequirepass\n", "fakerequirepass"),
    ("masterauth, indented", "  masterauth fakemasterauth", "fakemasterauth"),
    (
        "requirepass in a configmap's JSON",
        '"redis.conf": "port 6379\\nrequirepass fakecm"',
        "fakecm",
    ),
    ("config set", "CONFIG SET requirepass fakeconfigset", "fakeconfigset"),
    ("server flag", "redis-server --requirepass fakeflagpw --port 6379", "fakeflagpw"),
    ("long flag", "app --db-password fakedbpw --verbose", "fakedbpw"),
    ("flag with =", "app --token=fakeflagtoken", "fakeflagtoken"),
    ("redis-cli -a", "redis-cli -h redis -a fakeclipw ping", "fakeclipw"),
    # Argument vectors as JSON text (kubectl's last-applied-configuration), as a YAML block
    # sequence, and as `kubectl describe` prints them.
    ("json args", '{"args":["redis-server","--requirepass","fakejsonarg"]}', "fakejsonarg"),
    ("escaped json args", '[\\"redis-cli\\",\\"-a\\",\\"fakeescarg\\",\\"ping\\"]', "fakeescarg"),
    (
        "yaml args",
        "    args:\n    - redis-server\n    - --requirepass\n    - fakeyamlarg\n",
        "fakeyamlarg",
    ),
    ("yaml probe command", "command:\n- redis-cli\n- -a\n- fakeyamlcli\n- ping\n", "fakeyamlcli"),
    (
        "described args",
        "    Args:\n      redis-server\n      --requirepass\n      fakedescarg\n",
        "fakedescarg",
    ),
    ("AUTH command", "127.0.0.1:6379> AUTH default fakeauthpw", "fakeauthpw"),
    (
        "MONITOR auth",
        '1700000000.1 [0 10.0.0.1:5000] "AUTH" "default" "fakemonitorpw"',
        "fakemonitorpw",
    ),
    ("AUTH quoted", 'AUTH "fake quoted pw"', "fake quoted pw"),
]


@pytest.mark.parametrize(
    ("text", "secret"), [(t, s) for _, t, s in CORPUS], ids=[name for name, _, _ in CORPUS]
)
def test_secret_shapes_in_text_are_masked(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert REDACTED in out


def test_the_corpus_covers_at_least_25_shapes() -> None:
    assert len(CORPUS) >= 25


# Text that looks a little like a secret and is not one: it must come out unchanged.
INNOCENT = [
    "max_tokens: 1024, input_tokens=17",
    "Basic troubleshooting: the token expired, the secret rotated",
    "http://pd.tikv.svc:2379/pd/api/v1/stores",
    "kind: Secret\nmetadata:\n  name: aiops-anthropic",
    "task-0123456789abcdefghijklmnop finished",
    "monkey: banana\nturkey=roast\nhockey_score: 3",
    "primaryKey: id, sortKey: ts, idempotencyKey: incident-1-step-2, key: api-key",
    "secretName: aiops-anthropic\npasswordRef: db\ntoken_file: /var/run/token",
    "secretKeyRef:\n  name: redis\n  key: password",
    "authentication: enabled, author: bob, passed: 12, bypass: true",
    "auth failed for user bob; retrying",
    "NOAUTH Authentication required.",
    "the requirepass directive is not set",
    "- name: REDIS_HOST\n  value: redis.shop.svc",
    '{"name": "LOG_LEVEL", "value": "debug"}',
    "see https://example.com/a@b and mailto:bob@example.com",
    "git@github.com:org/repo.git",
    "user@host:22",
    "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----",
    "-----BEGIN PUBLIC KEY-----\nMIIBfake\n-----END PUBLIC KEY-----",
    "eyJhbGciOiJIUzI1NiJ9 is a header only",
    "ls -a /tmp && uname -a",
    "--password-file /etc/app/pw --auth-mode none",
    "pod web-0 restarted 3 times; passing tests: 12",
    "apiVersion: v1\nkind: ConfigMap\ndata:\n  maxmemory: 1gb",
    "Data\n====\nredis.conf:\n----\nmaxmemory 1gb\n\nport:\n----\n6379\n",
    "automountServiceAccountToken: false\nrequire_auth: true",
    '["redis-server", "--port", "6379", "--appendonly", "yes"]',
    "    - redis-server\n    - --port\n    - 6379\n",
]


@pytest.mark.parametrize("text", INNOCENT)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_env_pairs_args_and_headers_in_a_pod_spec_are_masked_by_name() -> None:
    env: list[dict[str, Any]] = [
        {"name": "REDIS_PASSWORD", "value": "fakeenvpw"},
        {"name": "REDIS_PASS", "value": "fakeenvpw2"},
        {"name": "masterauth", "value": "fakeenvpw3"},
        {
            "name": "ADMIN_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "redis", "key": "password"}},
        },
        {"name": "REDIS_HOST", "value": "redis.shop.svc"},
    ]
    pod = {
        "kind": "Pod",
        "apiVersion": "v1",
        "spec": {
            "containers": [
                {
                    "name": "redis",
                    "args": ["redis-server", "--requirepass", "fakeargpw", "--port", "6379"],
                    "env": env,
                    "livenessProbe": {
                        "exec": {"command": ["redis-cli", "-a", "fakeprobepw", "ping"]},
                        "httpGet": {
                            "httpHeaders": [{"name": "Authorization", "value": "Bearer x"}]
                        },
                    },
                }
            ]
        },
    }
    out = redact(pod)
    text = str(out)
    for secret in ("fakeargpw", "fakeenvpw", "fakeprobepw", "Bearer x"):
        assert secret not in text
    container = out["spec"]["containers"][0]
    assert container["args"] == ["redis-server", "--requirepass", REDACTED, "--port", "6379"]
    assert container["env"][4] == env[4]
    # A reference to a Secret says where the value comes from: kept.
    assert container["env"][3] == env[3]


def test_json_inside_a_string_is_redacted_as_data() -> None:
    # kubectl's last-applied-configuration: the whole object again, as a JSON string.
    applied = '{"spec":{"containers":[{"env":[{"value":"fakeapplied","name":"DB_TOKEN"}]}]}}\n'
    out = redact(
        {
            "metadata": {"annotations": {"last-applied": applied}},
            "automountServiceAccountToken": False,
        }
    )
    assert "fakeapplied" not in str(out)
    assert json.loads(out["metadata"]["annotations"]["last-applied"]) == {
        "spec": {"containers": [{"env": [{"value": REDACTED, "name": "DB_TOKEN"}]}]}
    }
    assert out["automountServiceAccountToken"] is False  # no secret is a boolean


def test_a_registered_secret_is_masked_inside_larger_base64_at_any_offset() -> None:
    secret = "fake-registered-secret-0123456789"
    redactor = Redactor([secret])
    middle = base64.b64encode(secret.encode()[3:27]).decode()
    for prefix in ("", "p", "pw", "password=", "a much longer config file line\n"):
        blob = base64.b64encode(f"{prefix}{secret}\ntrailing".encode()).decode()
        out = redactor.redact_text(f"data: {blob}")
        assert REDACTED in out, prefix
        assert middle not in out, prefix


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
