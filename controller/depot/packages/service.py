"""The software repository: packages, their content, and where hosts download it from."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.config import Settings
from depot.deployments.models import Step
from depot.errors import Conflict, not_found
from depot.packages import content
from depot.packages.models import Package
from depot.packages.schemas import ContentSource, PackageCreate, PackageUpdate
from depot.policies.models import Policy
from depot.schemas import validate_merged
from depot.security import Keys

FIELDS = ("name", "version", "platform", "installer_type", "product_id", "options", "content_url", "content_sha256")


def get(session: Session, package_id: int, *, for_update: bool = False) -> Package:
    package = session.get(Package, package_id, with_for_update=for_update)
    if package is None:
        raise not_found("package", package_id)
    return package


def list_statement(name: str | None = None, platform: str | None = None):
    statement = select(Package).order_by(Package.id)
    if name:
        statement = statement.where(Package.name == name)
    if platform:
        statement = statement.where(Package.platform == platform)
    return statement


def _check_unique(session: Session, data: PackageCreate, package_id: int | None = None) -> None:
    existing = session.scalar(select(Package.id).where(
        Package.name == data.name, Package.version == data.version, Package.platform == data.platform))
    if existing is not None and existing != package_id:
        raise Conflict(f"package {existing} already has name {data.name!r}, version {data.version!r} "
                       f"and platform {data.platform}")


def create(session: Session, data: PackageCreate) -> Package:
    _check_unique(session, data)
    package = Package(**data.model_dump())
    session.add(package)
    session.flush()
    return package


def update(session: Session, package: Package, data: PackageUpdate) -> Package:
    changes = data.model_dump(exclude_unset=True)
    current = {field: getattr(package, field) for field in FIELDS}
    if package.content_url is None:      # uploaded content: its sha256 is not an external pin
        current["content_sha256"] = None
    merged = validate_merged(PackageCreate, {**current, **changes})
    _check_unique(session, merged, package.id)
    for field in ("name", "version", "platform", "installer_type", "product_id", "options"):
        setattr(package, field, getattr(merged, field))
    if "content_url" in changes or "content_sha256" in changes:
        package.content_url, package.content_sha256 = merged.content_url, merged.content_sha256
        package.content_filename = package.content_size = None
    session.flush()
    return package


def delete(session: Session, package: Package) -> None:
    policy = session.scalar(select(Policy).where(Policy.package_id == package.id).limit(1))
    if policy is not None:
        raise Conflict(f"package {package.id} is used by policy {policy.id} ({policy.name!r})")
    step = session.scalar(select(Step).where(Step.package_id == package.id).limit(1))
    if step is not None:
        raise Conflict(f"package {package.id} is used by step {step.position} of deployment {step.deployment_id}")
    session.delete(package)
    session.flush()


def attach_content(session: Session, package: Package, sha256: str, size: int, filename: str) -> Package:
    """Record uploaded content (already in the content store) as the package's content."""
    package.content_sha256, package.content_size, package.content_filename = sha256, size, filename
    package.content_url = None
    session.flush()
    return package


def content_source(settings: Settings, keys: Keys, package: Package) -> ContentSource | None:
    """The ``src`` and ``checksum`` arguments a host downloads the package's content with: a
    short-lived signed URL of this controller for uploaded content, else the external URL; None
    when the package has no content (choco/winget from their own feeds, a path on the host)."""
    if package.content_url:
        return ContentSource(src=package.content_url, checksum=package.content_sha256)
    if package.content_sha256:
        url = content.signed_url(keys, settings.public_url, package.content_sha256,
                                 package.content_filename or package.content_sha256, ttl=settings.content_url_ttl)
        return ContentSource(src=url, checksum=package.content_sha256)
    return None
