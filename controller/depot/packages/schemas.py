"""Request and response bodies of the software repository."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from depot import modulespec
from depot.schemas import InModel, ReadModel

Platform = Literal["windows", "linux"]

# Package arguments that are columns of the package (or derived from them, or secrets that belong
# in credentials); the rest of depot.software.package's arguments go in `options`.
NOT_OPTIONS = {"name", "state", "installer_type", "product_id", "version", "src", "checksum",
               "run_as", "run_as_user", "run_as_password", "run_as_logon_type"}


def installer_types(platform: str) -> tuple[str, ...]:
    spec = modulespec.spec()
    return spec.WINDOWS_INSTALLER_TYPES if platform == "windows" else spec.POSIX_INSTALLER_TYPES


class PackageCreate(InModel):
    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)
    platform: Platform
    installer_type: str = Field(description="windows: msi msix exe msp choco winget; linux: deb rpm script archive")
    product_id: str | None = Field(default=None, max_length=300, description=(
        "MSI product code, deb/rpm package name, choco/winget id or MSIX package family name"))
    options: dict = Field(default_factory=dict, description=(
        "Further arguments of depot.software.package: install_command, uninstall_command, arguments, "
        "detection, exit_codes, timeout, retries, reboot, ..."))
    content_url: str | None = Field(default=None, max_length=2000, pattern="^https?://", description=(
        "External content hosts download instead of uploaded content; needs content_sha256"))
    content_sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$", validate_default=True,
                                       description="sha256 hex digest of content_url's content")

    @field_validator("installer_type")
    @classmethod
    def _installer_type_fits_platform(cls, value: str, info: ValidationInfo) -> str:
        platform = info.data.get("platform")
        allowed = installer_types(platform) if platform else modulespec.spec().INSTALLER_TYPES
        if value not in allowed:
            raise ValueError(f"installer_type {value!r} is not valid for platform {platform} (valid: {', '.join(allowed)})")
        return value

    @field_validator("options")
    @classmethod
    def _known_options(cls, value: dict, info: ValidationInfo) -> dict:
        platform = info.data.get("platform")
        errors = modulespec.option_errors(value, modulespec.allowed_options("package", NOT_OPTIONS),
                                          windows=None if platform is None else platform == "windows")
        if errors:
            raise ValueError("; ".join(errors))
        return value

    @field_validator("content_sha256")
    @classmethod
    def _sha256_with_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (info.data.get("content_url") is None) != (value is None):
            raise ValueError("content_url and content_sha256 go together: give both or neither")
        return value


class PackageUpdate(InModel):
    """Only the fields given change; the result is validated as a whole."""

    name: str | None = None
    version: str | None = None
    platform: Platform | None = None
    installer_type: str | None = None
    product_id: str | None = None
    options: dict | None = None
    content_url: str | None = None
    content_sha256: str | None = None


class PackageRead(ReadModel):
    id: int
    name: str
    version: str
    platform: str
    installer_type: str
    product_id: str | None
    options: dict
    content_sha256: str | None
    content_filename: str | None
    content_size: int | None
    content_url: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ContentSource(InModel):
    """Where a host downloads the package's content: `src` and `checksum` arguments of
    depot.software.package. A signed URL of this controller for uploaded content."""

    src: str
    checksum: str
