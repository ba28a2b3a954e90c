"""/api/v1/packages (the software repository) and /api/v1/content (what hosts download)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from depot.database.core import transaction
from depot.config import Settings
from depot.dependencies import CurrentKeys, CurrentSettings, CurrentUser, DbSession, Paging
from depot.errors import invalid
from depot.packages import content, service, upload, urls
from depot.packages.schemas import ContentSource, PackageCreate, PackageRead, PackageUpdate, Platform
from depot.schemas import Page, paginate
from depot.users import service as users

router = APIRouter(prefix="/packages", tags=["packages"])
content_router = APIRouter(prefix="/content", tags=["content"])


@router.get("", response_model=Page[PackageRead])
def list_packages(session: DbSession, paging: Paging, name: str | None = None, platform: Platform | None = None):
    return paginate(session, service.list_statement(name, platform), paging.page, paging.page_size,
                    PackageRead.model_validate)


def _check_user_input(user, settings: Settings, body: PackageCreate | PackageUpdate) -> None:
    """What only some roles may give a package: command lines (privileged, as in policies and
    steps: they run as given on every targeted host) and a content_url at an internal address
    (admin; depot.packages.urls)."""
    lines = users.command_lines(body.options)
    if lines:
        users.require(user, users.PRIVILEGED, f"a package setting {', '.join(lines)}")
    if body.content_url is not None and not users.at_least(user, users.ADMIN):
        try:
            urls.check(body.content_url, settings.content_url_allowed_networks, settings.public_url)
        except urls.ContentUrlError as e:
            raise invalid(["body", "content_url"], str(e)) from None


@router.post("", response_model=PackageRead, status_code=status.HTTP_201_CREATED)
def create_package(session: DbSession, user: CurrentUser, settings: CurrentSettings, body: PackageCreate):
    _check_user_input(user, settings, body)
    return PackageRead.model_validate(service.create(session, body))


@router.get("/{package_id}", response_model=PackageRead)
def get_package(session: DbSession, package_id: int):
    return PackageRead.model_validate(service.get(session, package_id))


@router.patch("/{package_id}", response_model=PackageRead)
def update_package(session: DbSession, user: CurrentUser, settings: CurrentSettings, package_id: int,
                   body: PackageUpdate):
    package = service.get(session, package_id, for_update=True)
    _check_user_input(user, settings, body)
    return PackageRead.model_validate(service.update(session, package, body))


@router.delete("/{package_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_package(session: DbSession, package_id: int):
    service.delete(session, service.get(session, package_id, for_update=True))


@router.post("/{package_id}/content", response_model=PackageRead, openapi_extra=upload.OPENAPI,
             summary="Upload the package's content (multipart part 'file'), streamed into the content store")
async def upload_content(request: Request, package_id: int):
    app = request.app
    settings = app.state.settings

    def check_exists():
        with transaction(app.state.sessionmaker) as session:
            service.get(session, package_id)

    def attach(sha256, size, filename):
        with transaction(app.state.sessionmaker) as session:
            package = service.get(session, package_id, for_update=True)
            return PackageRead.model_validate(service.attach_content(session, package, sha256, size, filename))

    await run_in_threadpool(check_exists)
    sha256, size, filename = await upload.receive_file(request, settings.data_dir, settings.max_upload_bytes)
    return await run_in_threadpool(attach, sha256, size, filename)


@router.get("/{package_id}/content-source", response_model=ContentSource,
            summary="The src and checksum a host downloads the content with (a short-lived signed URL)")
def get_content_source(session: DbSession, settings: CurrentSettings, keys: CurrentKeys, package_id: int):
    source = service.content_source(settings, keys, service.get(session, package_id))
    if source is None:
        raise invalid(["content"], f"package {package_id} has no content: upload it or set content_url")
    return source


@content_router.head("/{sha256}/{filename}", include_in_schema=False)
@content_router.get("/{sha256}/{filename}", response_class=FileResponse,
                    summary="Stored content, for a valid unexpired signature only")
def get_content(settings: CurrentSettings, keys: CurrentKeys, sha256: str, filename: str,
                expires: str = "", signature: str = ""):
    if not (expires.isdigit() and content.verify_url(keys, sha256, filename, int(expires), signature)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid or expired signature")
    try:
        path = content.content_path(settings.data_dir, sha256)
    except ValueError:
        path = None
    if path is None or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"content {sha256} is not in the store")
    return FileResponse(path, media_type="application/octet-stream", filename=filename)
