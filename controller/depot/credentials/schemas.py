"""Request and response bodies of credentials. The secret is write-only: it is accepted on create
and update, encrypted at once, and no response ever carries it (only `has_secret`)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator

from depot.schemas import InModel, ReadModel

CredentialKind = Literal["ssh_key", "ssh_password", "winrm", "psrp", "run_as", "share"]
CONNECTION_KINDS = ("ssh_key", "ssh_password", "winrm", "psrp")   # what a target's hosts are reached with


class SshOptions(InModel):
    port: int | None = Field(default=None, ge=1, le=65535)


class SshPasswordOptions(SshOptions):
    become: bool = Field(default=False, description="Also use the password for privilege escalation (sudo)")


class WindowsRemotingOptions(InModel):
    """WinRM (pywinrm) and PSRP (pypsrp) connections."""

    transport: Literal["ntlm", "kerberos", "credssp", "basic", "certificate"] = "ntlm"
    cert_validation: Literal["validate", "ignore"] = "validate"
    port: int | None = Field(default=None, ge=1, le=65535)


class RunAsOptions(InModel):
    domain: str | None = None
    logon_type: Literal["interactive", "batch", "network_cleartext", "new_credentials"] = "interactive"


class ShareOptions(InModel):
    domain: str | None = None


OPTIONS = {"ssh_key": SshOptions, "ssh_password": SshPasswordOptions, "winrm": WindowsRemotingOptions,
           "psrp": WindowsRemotingOptions, "run_as": RunAsOptions, "share": ShareOptions}


class CredentialFields(InModel):
    name: str = Field(min_length=1, max_length=200)
    kind: CredentialKind = Field(description=(
        "ssh_key (secret: private key; option port), ssh_password (secret: password; options port, become), "
        "winrm, psrp (secret: password; options transport, cert_validation, port): connections, a target's "
        "credential_id; run_as (a named account for run_as user), share (share access)"))
    username: str = Field(min_length=1, max_length=200)
    options: dict = Field(default_factory=dict, validate_default=True, description="Options of the kind (see its schema)")

    @field_validator("options")
    @classmethod
    def _options_of_kind(cls, value: dict, info: ValidationInfo) -> dict:
        model = OPTIONS.get(info.data.get("kind"))
        if model is None:
            return value
        try:
            return model.model_validate(value).model_dump(exclude_none=True)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise ValueError(f"invalid options for kind {info.data['kind']}: {problems}") from None


class CredentialCreate(CredentialFields):
    secret: SecretStr = Field(min_length=1, max_length=65536, description=(
        "Password or private key; write-only, stored encrypted, never returned"))


class CredentialUpdate(InModel):
    """Only the fields given change. A new `secret` replaces the stored one; without it the stored
    secret stays."""

    name: str | None = None
    kind: CredentialKind | None = None
    username: str | None = None
    options: dict | None = None
    secret: SecretStr | None = Field(default=None, min_length=1, max_length=65536)


class CredentialRead(ReadModel):
    id: int
    name: str
    kind: str
    username: str | None
    options: dict
    has_secret: bool
    created_at: dt.datetime
    updated_at: dt.datetime
