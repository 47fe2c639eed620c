"""The campaign file: bad input fails before anything runs, naming the file, the line and
the field."""

from pathlib import Path

import pytest

from aiops.eval.campaign import CampaignError, parse

GOOD = """\
name: smoke
namespace: demo
subjects:
  - name: rl
faults:
  - name: drift
    fault: counter_drift
    target: {member: k1}
    duration: 20s
variants:
  - name: runbook
    autonomy: execute
  - name: base
    baseline: true
trials: 2
"""


def check(text: str, api_key: str | None = None) -> str:
    with pytest.raises(CampaignError) as err:
        parse(text, Path("c.yaml"), api_key)
    return str(err.value)


def test_a_good_campaign_parses() -> None:
    c = parse(GOOD, Path("c.yaml")).campaign
    assert [v.info().baseline for v in c.variants] == [False, True]
    assert c.faults[0].plugin_fault == "counter_drift" and c.trials == 2


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("trials: 2", "trials: 0", "c.yaml:15: trials: Input should be greater than or equal to 1"),
        (
            "    autonomy: execute",
            "    autonomy: execute\n    colour: blue",
            "c.yaml:13: variants[0].colour: unknown field 'colour'",
        ),
        (
            "    duration: 20s",
            "    duration: 20s\n    fualt: x",
            "c.yaml:10: faults[0].fualt: unknown field 'fualt'",
        ),
        (
            "  - name: rl",
            "  - name: rl\n    kind: x",
            "c.yaml:5: subjects[0].kind: unknown field 'kind'",
        ),
        (
            "    autonomy: execute",
            "    autonomy: sometimes",
            "c.yaml:12: variants[0].autonomy: Input should be 'observe', 'propose' or 'execute' "
            "(got 'sometimes')",
        ),
        (
            "    baseline: true",
            "    baseline: true\n    autonomy: execute",
            "c.yaml:13: variants[1]: Value error, a baseline variant does not act",
        ),
        (
            "    duration: 20s",
            "    duration: twenty",
            "c.yaml:9: faults[0].duration: String should match pattern",
        ),
        (
            "  - name: base\n",
            "  - name: runbook\n",
            "c.yaml:13: variants[1].name: 'runbook' is named twice in variants",
        ),
        ("trials: 2\n", "trials: 2\nfaults: [\n", "c.yaml: line 17: not valid YAML"),
    ],
)
def test_bad_input_names_the_line_and_field(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    assert check(GOOD.replace(old, new, 1)).startswith(expected)


def test_a_missing_field_is_reported_where_it_belongs() -> None:
    assert check(GOOD.replace("trials: 2\n", "")).startswith("c.yaml:1: trials: Field required")
    text = GOOD.replace("  - name: drift\n    fault", "  - fault")
    assert check(text).startswith("c.yaml:6: faults[0].name: Field required")


def test_an_anthropic_variant_without_a_key_names_the_key() -> None:
    text = GOOD.replace("    autonomy: execute", "    backend: anthropic")
    message = check(text)
    assert message.startswith("c.yaml:12: variants[0].backend:")
    assert "ANTHROPIC_API_KEY" in message
    parse(text, Path("c.yaml"), "sk-x")  # with the key: fine
    named = text.replace(
        "backend: anthropic", "backend: anthropic\n    apiKeySecret: {name: s, key: k}"
    )
    parse(named, Path("c.yaml"))  # a Secret named: checked against the cluster instead


def test_a_variant_pinned_to_an_unknown_subject() -> None:
    text = GOOD.replace("    baseline: true", "    baseline: true\n    subjects: [rl, other]")
    assert check(text).startswith("c.yaml:15: variants[1].subjects[1]: unknown subject 'other'")
