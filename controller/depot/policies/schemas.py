"""Request and response bodies of policies."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from depot import modulespec
from depot.packages.schemas import NOT_OPTIONS as PACKAGE_COLUMNS
from depot.schemas import InModel, ReadModel

Category = Literal["software", "script"]

# Arguments that are columns of the policy (or of its package), or secrets (they belong in
# credentials); the rest of the action's arguments go in `options`.
POLICY_COLUMNS = {"retries", "retry_interval", "retry_after_reboot"}
NOT_OPTIONS = {
    "software": PACKAGE_COLUMNS | POLICY_COLUMNS,
    "script": {"name", "script", "script_path", "secrets", "run_as", "run_as_user", "run_as_password",
               "run_as_logon_type"} | POLICY_COLUMNS,
}


def allowed_options(category: str) -> dict[str, dict]:
    return modulespec.allowed_options("package" if category == "software" else "script", NOT_OPTIONS[category])


class PolicyFields(InModel):
    name: str = Field(min_length=1, max_length=200)
    category: Category = Field(description="software: install or uninstall a package; script: run a script")
    operation: Literal["install", "uninstall"] = Field(default="install", description="software only")
    package_id: int | None = Field(default=None, validate_default=True, description="software: the package")
    script: str | None = Field(default=None, validate_default=True, description="script: the script text")
    run_as: Literal["system", "logged_in_user", "user"] = "system"
    run_as_credential_id: int | None = Field(default=None, validate_default=True, description=(
        "run_as user: a credential of kind run_as"))
    network_condition: Literal["any", "lan_only"] = "any"
    retries: int = Field(default=0, ge=0, le=100)
    retry_interval: int = Field(default=60, ge=0, description="seconds")
    retry_after_reboot: bool = False
    options: dict = Field(default_factory=dict, validate_default=True, description=(
        "Further arguments of depot.software.package (software) or depot.software.script (script): "
        "exit_codes, reboot, timeout, arguments, detection, ..."))

    @field_validator("package_id")
    @classmethod
    def _package_for_software(cls, value: int | None, info: ValidationInfo) -> int | None:
        category = info.data.get("category")
        if category == "software" and value is None:
            raise ValueError("package_id is required for a software policy")
        if category == "script" and value is not None:
            raise ValueError("a script policy has no package_id")
        return value

    @field_validator("script")
    @classmethod
    def _script_for_script(cls, value: str | None, info: ValidationInfo) -> str | None:
        category = info.data.get("category")
        if category == "script" and not (value and value.strip()):
            raise ValueError("script is required for a script policy")
        if category == "software" and value is not None:
            raise ValueError("a software policy has no script")
        return value

    @field_validator("run_as_credential_id")
    @classmethod
    def _credential_for_user(cls, value: int | None, info: ValidationInfo) -> int | None:
        run_as = info.data.get("run_as")
        if run_as == "user" and value is None:
            raise ValueError("run_as_credential_id is required for run_as user")
        if run_as in ("system", "logged_in_user") and value is not None:
            raise ValueError(f"run_as {run_as} takes no run_as_credential_id")
        return value

    @field_validator("options")
    @classmethod
    def _known_options(cls, value: dict, info: ValidationInfo) -> dict:
        category = info.data.get("category")
        if category is not None:
            errors = modulespec.option_errors(value, allowed_options(category))
            if errors:
                raise ValueError("; ".join(errors))
        return value


class PolicyUpdate(InModel):
    """Only the fields given change; the result is validated as a whole. Editing a published
    policy returns it to draft: publish it again to deploy it."""

    name: str | None = None
    category: Category | None = None
    operation: Literal["install", "uninstall"] | None = None
    package_id: int | None = None
    script: str | None = None
    run_as: Literal["system", "logged_in_user", "user"] | None = None
    run_as_credential_id: int | None = None
    network_condition: Literal["any", "lan_only"] | None = None
    retries: int | None = None
    retry_interval: int | None = None
    retry_after_reboot: bool | None = None
    options: dict | None = None


class PolicyRead(ReadModel):
    id: int
    name: str
    state: Literal["draft", "published"]
    category: str
    operation: str
    package_id: int | None
    script: str | None
    run_as: str
    run_as_credential_id: int | None
    network_condition: str
    retries: int
    retry_interval: int
    retry_after_reboot: bool
    options: dict
    created_at: dt.datetime
    updated_at: dt.datetime
