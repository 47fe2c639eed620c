"""crds/ is what the models generate, and what they generate is a CRD a person can use."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field
from typer.testing import CliRunner

from aiops.api import CATEGORY, KINDS, Incident, Resource, Subject, crdgen
from aiops.api.common import ApiModel
from aiops.cli.main import app

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"


def committed_crd(kind: type[Resource]) -> dict[str, Any]:
    text = (CRDS / f"{kind.GROUP}_{kind.PLURAL}.yaml").read_text()
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def schema_of(kind: type[Resource]) -> dict[str, Any]:
    version = committed_crd(kind)["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below `schema`, with its path."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def test_crds_folder_is_up_to_date() -> None:
    assert crdgen.stale(CRDS) == [], "crds/ is stale: run `aiops crds`"
    on_disk = {str(p.relative_to(CRDS)) for p in CRDS.rglob("*") if p.is_file()}
    assert on_disk == set(crdgen.render()), "crds/ holds files the models do not generate"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_every_field_is_described(kind: type[Resource]) -> None:
    for path, node in nodes(schema_of(kind)):
        # The API server forbids saying anything about metadata, descriptions included.
        if path != ".metadata" and not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{kind.KIND}{path} has no description"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_schema_is_structural(kind: type[Resource]) -> None:
    schema = schema_of(kind)
    for path, node in nodes(schema):
        assert not {"anyOf", "oneOf", "allOf", "$ref", "not", "uniqueItems"} & node.keys(), path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
    # Unknown fields are pruned: nothing preserves them but the free-form plugin objects.
    preserved = [p for p, n in nodes(schema) if n.get("x-kubernetes-preserve-unknown-fields")]
    assert all(p.endswith((".config", ".params")) for p in preserved), preserved


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_crd_names_subresource_and_category(kind: type[Resource]) -> None:
    crd = committed_crd(kind)
    names = crd["spec"]["names"]
    assert names["categories"] == [CATEGORY]
    assert names["shortNames"]
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_short_names_are_unique() -> None:
    shorts = [s for k in KINDS for s in k.SHORT_NAMES]
    assert len(shorts) == len(set(shorts))


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        ("incident", ["Subject", "Invariant", "Severity", "Phase", "Age"]),
        ("subject", ["Type", "Health", "Open Incidents", "Autonomy", "Age"]),
        ("chaos", ["Subject", "Fault", "Target", "Phase", "Time Left", "Age"]),
        ("approval", ["Incident", "Decision", "By", "Age"]),
    ],
)
def test_default_printer_columns(kind: str, columns: list[str]) -> None:
    resource = next(k for k in KINDS if kind == k.SINGULAR)
    printed = committed_crd(resource)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in printed if not c.get("priority")] == columns
    assert all(c["description"] for c in printed)


def test_defaults_are_in_the_schema() -> None:
    spec = schema_of(Subject)["properties"]["spec"]["properties"]
    assert spec["autonomy"]["default"] == "propose"
    assert spec["autonomy"]["enum"] == ["observe", "propose", "execute"]
    assert spec["interval"]["default"] == "10s"
    assert spec["paused"]["default"] is False
    assert spec["agent"]["properties"]["backend"]["default"] == "auto"


def test_incident_identity_is_immutable() -> None:
    rules = schema_of(Incident)["properties"]["spec"]["x-kubernetes-validations"]
    immutable = {r["fieldPath"] for r in rules if "oldSelf" in r["rule"]}
    assert immutable == {".subject", ".invariant", ".entity", ".source"}


def test_stale_detects_changed_missing_and_leftover_files(tmp_path: Path) -> None:
    assert crdgen.stale(tmp_path / "absent") == sorted(crdgen.render())
    crdgen.write(tmp_path)
    assert crdgen.stale(tmp_path) == []
    (tmp_path / "aiops.dev_subjects.yaml").write_text("# edited by hand\n")
    (tmp_path / "rbac" / "aiops-sre.yaml").unlink()
    (tmp_path / "old.yaml").write_text(crdgen.HEADER + "kind: Gone\n")
    (tmp_path / "mine.yaml").write_text("kind: NotGenerated\n")
    assert crdgen.stale(tmp_path) == ["aiops.dev_subjects.yaml", "old.yaml", "rbac/aiops-sre.yaml"]
    assert crdgen.write(tmp_path) == ["aiops.dev_subjects.yaml", "old.yaml", "rbac/aiops-sre.yaml"]
    assert crdgen.stale(tmp_path) == []
    assert not (tmp_path / "old.yaml").exists()
    assert (tmp_path / "mine.yaml").exists()


def test_cli_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    out = str(tmp_path / "crds")
    stale = runner.invoke(app, ["crds", "--out", out, "--check"])
    assert stale.exit_code == 1
    assert "run `aiops crds`" in stale.output
    wrote = runner.invoke(app, ["crds", "--out", out])
    assert wrote.exit_code == 0, wrote.output
    assert "wrote" in wrote.output
    fresh = runner.invoke(app, ["crds", "--out", out, "--check"])
    assert fresh.exit_code == 0
    assert "up to date" in fresh.output


class Undescribed(ApiModel):
    """A model with a field nobody explained."""

    count: int = Field(default=0)


class Positive(ApiModel):
    """Strictly positive."""

    count: int = Field(gt=0, description="More than zero.")


def test_a_field_without_description_fails_generation() -> None:
    with pytest.raises(crdgen.SchemaError, match=r"Undescribed\.count has no description"):
        crdgen.openapi_schema(Undescribed)


def test_exclusive_bounds_use_openapi_v3_spelling() -> None:
    count = crdgen.openapi_schema(Positive)["properties"]["count"]
    assert (count["minimum"], count["exclusiveMinimum"]) == (0, True)
