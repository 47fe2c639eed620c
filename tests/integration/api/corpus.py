"""The malformed-manifest corpus in bad/: each file is a case the API server must reject.

A case file starts with comment headers, then one YAML document (created) or two (the first is
created, the second is the rejected change):

    # Rejects: what is wrong, in words
    # Layer: schema | cel | transition | policy | rbac | field-validation
    # Operation: create | update | status     (default create; status patches the /status)
    # As: alice                               (default: the cluster admin)
    # Base-As: alice                          (who creates the first document; default As)
    # Expect: a substring of the API server's message

`{namespace}` in a case stands for the test namespace.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aiops.api import KINDS, Resource

BAD = Path(__file__).parent / "bad"
LAYERS = ("schema", "cel", "transition", "policy", "rbac", "field-validation")
OPERATIONS = ("create", "update", "status")
_HEADER = re.compile(r"^# (\w[\w-]*): (.*)$")


@dataclass(frozen=True)
class Case:
    path: Path
    headers: dict[str, str]
    text: str

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def layer(self) -> str:
        return self.headers["layer"]

    @property
    def operation(self) -> str:
        return self.headers.get("operation", "create")

    @property
    def expect(self) -> str:
        return self.headers["expect"]

    def as_user(self, namespace: str) -> str | None:
        """Who makes the rejected request; None for the cluster admin."""
        user = self.headers.get("as")
        return user.replace("{namespace}", namespace) if user else None

    def base_as_user(self, namespace: str) -> str | None:
        """Who creates the base document."""
        user = self.headers.get("base-as")
        return user.replace("{namespace}", namespace) if user else self.as_user(namespace)

    def documents(self, namespace: str) -> list[dict[str, Any]]:
        """The base (when there is one) and the rejected manifest, last."""
        return list(yaml.safe_load_all(self.text.replace("{namespace}", namespace)))

    @property
    def kind(self) -> type[Resource]:
        kind = self.documents("default")[-1]["kind"]
        return next(k for k in KINDS if kind == k.KIND)


def load(path: Path) -> Case:
    text = path.read_text(encoding="utf-8")
    headers = {}
    for line in text.splitlines():
        match = _HEADER.match(line)
        if not match:
            break
        headers[match.group(1).lower()] = match.group(2).strip()
    return Case(path, headers, text)


def cases() -> list[Case]:
    return [load(p) for p in sorted(BAD.glob("*.yaml"))]
