"""Request and response bodies of targets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from depot.scheduling.schemas import WindowFields, WindowRead
from depot.schemas import InModel, ReadModel

TargetKind = Literal["host", "group", "dynamic"]


class Filter(InModel):
    """A condition on a host variable (a dotted path reaches into dicts: ansible_facts.os_family)."""

    var: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
    op: Literal["eq", "ne", "in", "contains", "exists"] = Field(description=(
        "eq/ne: equal or not (a host without the variable is 'ne'); in: the variable's value is one of `value` "
        "(a list); contains: the variable (a list or string) contains `value`; exists: the variable is defined"))
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> "Filter":
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError("value must be a list for op 'in'")
        if self.op in ("eq", "ne", "contains") and self.value is None:
            raise ValueError(f"value is required for op {self.op!r}")
        if self.op == "exists" and self.value is not None:
            raise ValueError("op 'exists' takes no value")
        return self


class TargetSpec(InModel):
    """What a target selects; `POST /targets/resolve` previews it without saving."""

    kind: TargetKind = Field(description=(
        "host: the `hosts` listed; group: every host of `group`; dynamic: hosts of `group` (default all) "
        "whose host vars match every one of `filters`"))
    inventory: str = Field(min_length=1, description=(
        "An Ansible inventory source on the controller: an inventory file, directory or inventory plugin config"))
    group: str | None = Field(default=None, max_length=200, validate_default=True)
    hosts: list[str] = Field(default_factory=list, validate_default=True)
    filters: list[Filter] = Field(default_factory=list, validate_default=True)

    @field_validator("inventory")
    @classmethod
    def _inventory_exists(cls, value: str) -> str:
        path = Path(value).expanduser()
        if not path.exists():
            raise ValueError(f"inventory source {value} does not exist")
        return str(path.resolve())

    @field_validator("group")
    @classmethod
    def _group_of_kind(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "group" and not value:
            raise ValueError("group is required for a target of kind group")
        if kind == "host" and value:
            raise ValueError("a target of kind host has no group; list its hosts")
        return value or ("all" if kind == "dynamic" else None)

    @field_validator("hosts")
    @classmethod
    def _hosts_of_kind(cls, value: list[str], info: ValidationInfo) -> list[str]:
        kind = info.data.get("kind")
        if kind == "host" and not value:
            raise ValueError("hosts must list at least one host for a target of kind host")
        if kind in ("group", "dynamic") and value:
            raise ValueError(f"a target of kind {kind} selects hosts by group; hosts must be empty")
        if any(not h.strip() for h in value):
            raise ValueError("host names must not be empty")
        return list(dict.fromkeys(value))

    @field_validator("filters")
    @classmethod
    def _filters_of_kind(cls, value: list[Filter], info: ValidationInfo) -> list[Filter]:
        kind = info.data.get("kind")
        if kind == "dynamic" and not value:
            raise ValueError("a target of kind dynamic needs at least one filter")
        if kind in ("host", "group") and value:
            raise ValueError(f"a target of kind {kind} has no filters (use kind dynamic)")
        return value


class TargetCreate(TargetSpec):
    name: str = Field(min_length=1, max_length=200)
    credential_id: int | None = Field(default=None, description=(
        "The credential runs connect to the target's hosts with (kind ssh_key, ssh_password, winrm or psrp); "
        "none: the inventory's own connection variables"))
    windows: list[WindowFields] = Field(default_factory=list, description=(
        "Maintenance windows of the target's hosts: a step starts on a host only when its deployment's windows "
        "AND the windows of the targets it came from are open for the step's whole timeout (none: no restriction)"))
    exclusions: list[WindowFields] = Field(default_factory=list, description=(
        "Exclusion periods (freeze days) of the target's hosts"))


class TargetUpdate(InModel):
    """Only the fields given change; the result is validated as a whole."""

    name: str | None = None
    kind: TargetKind | None = None
    inventory: str | None = None
    group: str | None = None
    hosts: list[str] | None = None
    filters: list[dict] | None = None
    credential_id: int | None = None
    windows: list[WindowFields] | None = Field(default=None, description="Replaces every window")
    exclusions: list[WindowFields] | None = Field(default=None, description="Replaces every exclusion")


class TargetRead(ReadModel):
    id: int
    name: str
    kind: str
    inventory: str
    group: str | None
    hosts: list[str]
    filters: list[dict]
    credential_id: int | None
    windows: list[WindowRead]
    exclusions: list[WindowRead]
    created_at: dt.datetime
    updated_at: dt.datetime


class ResolvedHosts(InModel):
    hosts: list[str]
    count: int
