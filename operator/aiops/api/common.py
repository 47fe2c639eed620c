"""What the four kinds share: the group, the model base, CEL rules, common types, the envelope.

Every wire model derives from `ApiModel`: camelCase on the wire, snake_case in Python, strict
types (the API server does not coerce `"10"` into 10, so neither do we), unknown fields
ignored (the API server prunes them; an operator older than its CRD must still read objects).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    Strict,
    StringConstraints,
    WithJsonSchema,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from aiops.vocabulary import ConditionStatus

GROUP = "aiops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "aiops"
"""`kubectl get aiops` lists every kind of this API."""


@dataclass(frozen=True)
class Rule:
    """A CEL validation rule (`x-kubernetes-validations`) declared next to its model.

    `check` is the same rule in Python, run when the model validates, so code that builds a
    manifest learns what the API server would say before sending it. Transition rules (those
    reading `oldSelf`) have no Python twin: only the API server sees the old object.
    """

    cel: str
    message: str
    check: Callable[[Any], bool] | None = None
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.cel, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


def immutable(field: str, *, optional: bool = False) -> Rule:
    """A transition rule, on the parent object, keeping `field` as it was created.

    On the parent rather than on the field itself because a field-level transition rule only
    runs when both the old and the new object have the field: adding or removing an optional
    field would slip past it.
    """
    if optional:
        cel = (
            f"has(self.{field}) == has(oldSelf.{field}) && "
            f"(!has(self.{field}) || self.{field} == oldSelf.{field})"
        )
    else:
        cel = f"self.{field} == oldSelf.{field}"
    return Rule(cel=cel, message=f"{field} is immutable", field_path=f".{field}")


class ApiModel(BaseModel):
    """Base of every model on the wire; subclasses list their CEL rules in `RULES`."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        strict=True,
    )

    RULES: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        for rule in type(self).RULES:
            if rule.check is not None and not rule.check(self):
                raise ValueError(rule.message)
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if cls.RULES:
            target = handler.resolve_ref_schema(json_schema)
            target["x-kubernetes-validations"] = [rule.to_schema() for rule in cls.RULES]
        return json_schema


class _Null:
    def __repr__(self) -> str:
        return "NULL"


NULL: Any = _Null()
"""For `wire`: write this field as null, which a merge patch removes (None leaves it out)."""


def wire(model: type[BaseModel], /, **fields: Any) -> dict[str, Any]:
    """Fields of `model` in wire form, from their Python names: each name becomes its camelCase
    alias (KeyError on a name the model does not have), and a field left None is left out.
    Values are as given: for a status patch or a record in one, which the writer validates
    (and the incident loop's clips, `loops/incident/status.fit`)."""
    known = model.model_fields
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in known:
            raise KeyError(f"{model.__name__} has no field {name!r}")
        if value is not None:
            out[known[name].alias or name] = None if value is NULL else value
    return out


class KubeAnnotation:
    """Base of `Annotated` metadata that checks a value after pydantic's own validation and
    says the same thing to the API server in the field's schema."""

    def check(self, value: Any) -> Any:
        """Returns the value, or raises ValueError with the API server's message."""
        raise NotImplementedError

    def extend(self, json_schema: JsonSchemaValue) -> None:
        """Adds the Kubernetes keywords that make the API server check the same."""
        raise NotImplementedError

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        self.extend(json_schema)
        return json_schema


@dataclass(frozen=True)
class MapList(KubeAnnotation):
    """Annotation: a list whose items are unique by `keys` (`x-kubernetes-list-type: map`).

    The API server then rejects duplicates and server-side apply merges items by key instead
    of replacing the whole list. Keys are fields named alike in Python and on the wire.
    """

    keys: tuple[str, ...]

    def check(self, value: Any) -> Any:
        seen: set[tuple[Any, ...]] = set()
        for item in value:
            key = tuple(getattr(item, k) for k in self.keys)
            if key in seen:
                raise ValueError(f"duplicate {'/'.join(self.keys)} {'/'.join(map(str, key))}")
            seen.add(key)
        return value

    def extend(self, json_schema: JsonSchemaValue) -> None:
        json_schema["x-kubernetes-list-type"] = "map"
        json_schema["x-kubernetes-list-map-keys"] = list(self.keys)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Timestamp = Annotated[AwareDatetime, Strict(False), AfterValidator(_utc)]
"""An RFC 3339 time with a zone, kept in UTC. Lax so that the strings on the wire parse; naive
times are refused because a time without a zone is a bug waiting for a second machine."""

Name = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=253,
    ),
]
"""The name of another object in the same namespace (a DNS-1123 subdomain)."""

Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", max_length=63),
]
"""A name chosen by a plugin or the operator: an invariant, an action, a fault, a member."""

ShortText = Annotated[str, StringConstraints(max_length=256)]
Text = Annotated[str, StringConstraints(max_length=4096)]
LongText = Annotated[str, StringConstraints(max_length=32768)]

Username = Annotated[str, StringConstraints(min_length=1, max_length=512)]
"""A Kubernetes username, as the API server authenticates it (`kubectl auth whoami`)."""

Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]

LabelValue = Annotated[
    str,
    StringConstraints(pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$", max_length=63),
]

PreservedObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""A free-form object that the API server keeps as written; its owner validates it."""


class LabelSelector(ApiModel):
    """Selects objects or members by labels; every label must match."""

    match_labels: dict[str, LabelValue] = Field(
        min_length=1,
        max_length=32,
        description="Labels that must all be present with these values. At least one: an "
        "empty selector would select everything.",
    )


class Condition(ApiModel):
    """The standard Kubernetes condition (metav1.Condition), so kubectl wait and kstatus work."""

    type: Annotated[
        str,
        StringConstraints(
            pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
            r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            max_length=316,
        ),
    ] = Field(description="Type of condition in CamelCase, such as Ready or Observing.")
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    reason: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024),
    ] = Field(description="Machine-readable CamelCase reason for the last transition.")
    message: LongText = Field(
        default="", description="Human-readable details about the last transition."
    )
    last_transition_time: Timestamp = Field(
        description="When the condition last changed from one status to another."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The .metadata.generation the condition was set from.",
    )


Conditions = Annotated[list[Condition], MapList(("type",)), Field(max_length=16)]


class OwnerReference(ApiModel):
    """An owner of this object; deleting the owner deletes it (garbage collection)."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(ApiModel):
    """The metadata fields this code reads or writes; the API server owns the rest."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    finalizers: list[str] = Field(default_factory=list)
    owner_references: list[OwnerReference] = Field(default_factory=list)
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Timestamp | None = None
    deletion_timestamp: Timestamp | None = None

    @model_serializer(mode="wrap")
    def _drop_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An empty list in a manifest is not "unset": applied, `finalizers: []` would strip
        # the finalizers the operator added. Leave out what this code did not set.
        return {k: v for k, v in handler(self).items() if v != [] and v != {}}


@dataclass(frozen=True)
class Column:
    """A `kubectl get` column. Type and description default to the field's own in the schema."""

    name: str
    json_path: str
    priority: int = 0
    type: str | None = None
    description: str | None = None


AGE = Column(
    "Age",
    ".metadata.creationTimestamp",
    type="date",
    description="Time since the object was created.",
)


def _plain(value: Any) -> Any:
    """Deep-copies mappings and sequences (kopf's Body, for instance) into dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value


class Resource(ApiModel):
    """The envelope of a custom resource; each kind adds `spec` and `status` models.

    The class-level names describe the CRD; `aiops.api.crdgen` reads them, and so can code
    that talks to the API (`Incident.PLURAL`, `Incident.API_VERSION`).
    """

    API_VERSION: ClassVar[str] = API_VERSION
    GROUP: ClassVar[str] = GROUP
    VERSION: ClassVar[str] = VERSION
    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SINGULAR: ClassVar[str]
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()
    PRINTER_COLUMNS: ClassVar[tuple[Column, ...]] = ()
    SELECTABLE_FIELDS: ClassVar[tuple[str, ...]] = ()
    """Spec fields usable in `kubectl get --field-selector` and in list calls."""

    api_version: str = Field(default=API_VERSION)
    kind: str = Field(default="")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @model_validator(mode="before")
    @classmethod
    def _check_type_meta(cls, data: Any) -> Any:
        # Before the fields: "this is an Incident, not a Subject" beats a list of missing fields.
        if not isinstance(data, dict):
            return data
        api_version = data.get("apiVersion", data.get("api_version")) or cls.API_VERSION
        kind = data.get("kind") or cls.KIND
        if (api_version, kind) != (cls.API_VERSION, cls.KIND):
            raise ValueError(
                f"expected apiVersion {cls.API_VERSION} kind {cls.KIND}, got {api_version} {kind}"
            )
        return {**data, "kind": kind}

    @classmethod
    def crd_name(cls) -> str:
        return f"{cls.PLURAL}.{cls.GROUP}"

    @classmethod
    def from_k8s(cls, obj: Mapping[str, Any]) -> Self:
        """Validates an object as the API (or kopf, or a YAML file) hands it over."""
        return cls.model_validate(_plain(obj))

    def to_k8s(self, *, status: bool = True) -> dict[str, Any]:
        """The manifest: camelCase, unset fields left out. `status=False` for create/apply,
        where the API server ignores status anyway (it is written through /status)."""
        out = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not status:
            out.pop("status", None)
        return out
