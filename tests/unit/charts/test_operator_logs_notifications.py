"""The operator chart's log format and notification values: the settings the operator reads,
the webhook only as a Secret's name (a URL in values is refused, not echoed)."""

from __future__ import annotations

from aiops.settings import OperatorSettings
from tests.unit.charts.helm import template_error
from tests.unit.charts.test_aiops_operator import CHART, env, render


def test_log_format_and_the_webhook_secret_become_the_operators_settings() -> None:
    e = env(render())
    assert e["AIOPS_LOG_FORMAT"]["value"] == "text" and "AIOPS_NOTIFY_SECRET" not in e
    e = env(
        render(
            {
                "logFormat": "json",
                "notifications": {
                    "existingSecret": "hook",
                    "existingSecretKey": "u",
                    "format": "generic",
                },
            }
        )
    )
    said = {k: e[k]["value"] for k in e if k.startswith(("AIOPS_LOG", "AIOPS_NOTIFY"))}
    assert said == {
        "AIOPS_LOG_FORMAT": "json",
        "AIOPS_NOTIFY_SECRET": "hook",
        "AIOPS_NOTIFY_SECRET_KEY": "u",
        "AIOPS_NOTIFY_FORMAT": "generic",
        "AIOPS_NOTIFY_TIMEOUT": "10s",
        "AIOPS_NOTIFY_RETRY_MAX": "30s",
    }
    settings = OperatorSettings.from_env(said)  # values the operator starts with
    assert settings.notify_secret == "hook" and settings.notify_timeout.total_seconds() == 10


def test_a_webhook_url_in_values_is_refused_and_not_echoed() -> None:
    url = "https://hooks.slack.com/services/T000/B000/NOTAREALTOKEN"
    err = template_error(CHART, {"notifications": {"url": url}})
    assert "url" in err and "not allowed" in err and url not in err
    assert "logFormat" in template_error(CHART, {"logFormat": "xml"})
