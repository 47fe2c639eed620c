"""The base of a plugin's configuration model (`SubjectPlugin.config_model`), and value types
plugins share. A Subject's `spec.config` is validated against it when the Subject binds; what
it refuses becomes the Subject's `Ready=False` (reason `InvalidConfig`) naming each field."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel


class PluginConfig(BaseModel):
    """camelCase on the wire like the rest of the API (`request_timeout_seconds` is written
    `requestTimeoutSeconds`; the Python name is accepted too), unknown fields refused (a
    typo is an error, not a default silently kept), and immutable once validated."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


LabelValue = Annotated[str, StringConstraints(pattern=r"^[-a-zA-Z0-9_.:/]+$", max_length=128)]
"""A Prometheus label value put between double quotes in PromQL unescaped: anything else is
refused rather than escaped."""
