"""A `kubectl patch` step may change only allowlisted fields: one patch must not do what the
verb allowlist refuses elsewhere (another ServiceAccount, a Secret copied into env, a volume)."""

import json

import pytest

from aiops.actions.kubectl.argv import KubectlRefused, mutation_command

DEPLOY = "deployments.apps/web"


def _patch(doc: object, *extra: str) -> list[str]:
    return ["patch", DEPLOY, "-p", json.dumps(doc), *extra]


@pytest.mark.parametrize(
    "argv",
    [
        ["patch", "configmap", "x", "-p", '{"data":{"mode":"safe"}}', "--type=merge"],
        _patch({"metadata": {"labels": {"tier": "web"}, "annotations": {"a": "b"}}}),
        _patch({"spec": {"replicas": 3}}),
        _patch({"spec": {"paused": True}}, "--type=merge"),
        _patch(
            {
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {
                                "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"
                            }
                        }
                    }
                }
            }
        ),
        _patch(
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "web",
                                    "image": "registry.local/web:2",
                                    "resources": {"limits": {"cpu": "1"}},
                                },
                            ]
                        }
                    }
                }
            }
        ),
        _patch([{"op": "replace", "path": "/spec/replicas", "value": 2}], "--type=json"),
        _patch(
            [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "x"}],
            "--type=json",
        ),
        _patch([{"op": "remove", "path": "/metadata/annotations/a~1b"}], "--type=json"),
    ],
)
def test_allowed_fields_pass(argv: list[str]) -> None:
    mutation_command(argv)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (
            _patch({"spec": {"template": {"spec": {"serviceAccountName": "admin"}}}}),
            "spec.template.spec.serviceAccountName",
        ),
        (
            _patch(
                {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": "web",
                                        "env": [
                                            {
                                                "name": "P",
                                                "valueFrom": {
                                                    "secretKeyRef": {
                                                        "name": "db",
                                                        "key": "password",
                                                    }
                                                },
                                            }
                                        ],
                                    }
                                ]
                            }
                        }
                    }
                }
            ),
            "spec.template.spec.containers[web].env",
        ),
        (
            _patch({"spec": {"template": {"spec": {"volumes": [{"name": "s", "secret": {}}]}}}}),
            "spec.template.spec.volumes",
        ),
        (
            _patch({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            "each container is named",
        ),
        (
            _patch({"spec": {"selector": {"matchLabels": {"a": "b"}}}}),
            "spec.selector.matchLabels.a",
        ),
        (_patch({"metadata": {"ownerReferences": []}}), "metadata.ownerReferences"),
        (_patch({"metadata": {"annotations": None}}), "metadata.annotations"),
        (
            _patch(
                [{"op": "add", "path": "/spec/template/spec/hostNetwork", "value": True}],
                "--type=json",
            ),
            "/spec/template/spec/hostNetwork",
        ),
        (
            _patch([{"op": "copy", "from": "/spec/x", "path": "/spec/replicas"}], "--type=json"),
            "op 'copy'",
        ),
        (
            _patch(
                [
                    {
                        "op": "replace",
                        "path": "/spec/template/spec/containers/0/command",
                        "value": ["sh"],
                    }
                ],
                "--type=json",
            ),
            "/spec/template/spec/containers/0/command",
        ),
    ],
)
def test_fields_outside_the_allowlist_are_refused_by_name(argv: list[str], named: str) -> None:
    with pytest.raises(KubectlRefused) as err:
        mutation_command(argv)
    assert named in str(err.value)
    assert "allowed:" in str(err.value)  # the model is told what it may change instead
