"""Node settings from RL_* variables: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from ratelimiter.__main__ import main
from ratelimiter.config import Settings, SettingsError


def test_defaults_and_derived_values() -> None:
    s = Settings.from_env({"RL_PORT": "9001", "RL_NODE_ID": "n1"})
    assert (s.port, s.node_id, s.default_limit, s.default_window_ms) == (9001, "n1", 100, 1000)
    assert s.advertise_url == "http://127.0.0.1:9001"
    assert Settings.from_env({"RL_PORT": "9002"}).node_id.endswith("-9002")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"RL_PORT": "http"}, "RL_PORT"),
        ({"RL_DEFAULT_LIMIT": "0"}, "RL_DEFAULT_LIMIT"),
        ({"RL_DEFAULT_LIMIT": "2000000000"}, "RL_DEFAULT_LIMIT"),
        ({"RL_DEFAULT_WINDOW_MS": "-5"}, "RL_DEFAULT_WINDOW_MS"),
        ({"RL_NODE_ID": "has space"}, "RL_NODE_ID"),
        ({"RL_KEY_PREFIX": "a:b"}, "RL_KEY_PREFIX"),
        ({"RL_NODE_TTL_S": "1", "RL_HEARTBEAT_INTERVAL_S": "2"}, "must exceed"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env(env)


def test_the_command_refuses_bad_settings_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RL_DEFAULT_LIMIT", "-1")
    assert main(["settings"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ratelimiter: bad settings: RL_DEFAULT_LIMIT")
    assert len(err.strip().splitlines()) == 1
