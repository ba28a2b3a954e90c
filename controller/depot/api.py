"""The REST API: ``create_app(settings)`` builds the FastAPI application. It starts nothing in the
background; the CLI adds the scheduler and the worker next to it."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from depot import __version__
from depot.config import Settings
from depot.credentials.views import router as credentials_router
from depot.dashboard.views import router as dashboard_router
from depot.database.core import first_line, is_disconnect, make_engine, make_sessionmaker
from depot.deployments.views import router as deployments_router
from depot.deployments.views import runs_router, schedules_router
from depot.audit.views import router as audit_router
from depot.dependencies import DbSession, allow, audited
from depot.errors import DepotError, Invalid
from depot.hosts.views import router as hosts_router
from depot.limits import BodySizeLimit
from depot.notifications.views import router as notifications_router
from depot.observability import install_observability
from depot.orchestration.states import InvalidTransition
from depot.packages.views import content_router
from depot.packages.views import router as packages_router
from depot.policies.views import router as policies_router
from depot.security import load_keys
from depot.targets.views import router as targets_router
from depot.users.service import ADMIN, OPERATOR, VIEWER
from depot.users.views import tokens_router, users_router

API_PREFIX = "/api/v1"
log = logging.getLogger(__name__)


def _errors(errors) -> list[dict]:
    """Validation errors as loc/msg/type only: never echo the input back (it may hold a secret)."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _errors(exc.errors())}, status_code=422)

    @app.exception_handler(Invalid)
    async def service_invalid(_request: Request, exc: Invalid):
        return JSONResponse({"detail": exc.detail()}, status_code=422)

    @app.exception_handler(DepotError)
    async def depot_error(_request: Request, exc: DepotError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(InvalidTransition)
    async def invalid_transition(_request: Request, exc: InvalidTransition):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    # A number beyond what the database stores (an id past 32 bits on PostgreSQL, 64 on SQLite):
    # bad input, like any other, and the transaction is rolled back.
    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def out_of_range(_request: Request, exc: Exception):
        return JSONResponse({"detail": Invalid([(["request"], "a number is out of the range the database stores "
                                                              "(e.g. an id beyond 32 bits)")]).detail()},
                            status_code=422)

    @app.exception_handler(IntegrityError)
    async def integrity_error(_request: Request, exc: IntegrityError):
        return JSONResponse({"detail": f"conflicts with stored data: {exc.orig}"}, status_code=409)

    # The database unreachable or restarting (connection refused or dropped, server shutting down,
    # no pooled connection in time, SQLite locked beyond its busy timeout): 503, so clients know to
    # retry (its transaction is rolled back; only a connection lost during COMMIT itself leaves the
    # outcome unknown, as with any database). The error's own text is not echoed (it may name the
    # server's address); its class is.
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(DBAPIError)
    async def database_unavailable(_request: Request, exc: Exception):
        if not is_disconnect(exc):
            log.error("database error", exc_info=exc)
            return JSONResponse({"detail": "database error: the request was not completed"}, status_code=500)
        cause = type(getattr(exc, "orig", None) or exc).__name__
        log.warning("database unavailable (%s): %s", cause, first_line(exc))
        return JSONResponse({"detail": f"the database is unavailable ({cause}): the request was not "
                                       "completed; retry later"}, status_code=503, headers={"Retry-After": "5"})


def create_app(settings: Settings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        engine.dispose()

    app = FastAPI(title="Depot", version=__version__, lifespan=lifespan, docs_url="/docs",
                  description="Software repository, policies and multi-step deployments with per-host status.")
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.keys = load_keys(settings.data_dir, settings.secret_key)
    _install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    install_observability(app)   # GET /metrics; X-Request-ID and the request id on log lines

    api = APIRouter(prefix=API_PREFIX)

    @api.get("/health", tags=["health"])
    def health(session: DbSession) -> dict:
        session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    # Who may do what (depot.users.service): reads need viewer, changes operator, unless a router
    # says more; views add the privileged checks (scripts, command lines). Content URLs are signed
    # for hosts, a check-in carries the host's own token, health is open.
    for router, read, write in (
            (packages_router, VIEWER, OPERATOR), (targets_router, VIEWER, OPERATOR),
            (policies_router, VIEWER, OPERATOR), (deployments_router, VIEWER, OPERATOR), (runs_router, VIEWER, VIEWER),
            (notifications_router, VIEWER, OPERATOR), (credentials_router, ADMIN, ADMIN)):
        api.include_router(router, dependencies=[allow(read, write), Depends(audited, scope="function")])
    api.include_router(schedules_router, dependencies=[allow(VIEWER, VIEWER)])   # previews: nothing to audit
    for router in (users_router, tokens_router):
        api.include_router(router, dependencies=[Depends(audited, scope="function")])
    for router in (content_router, hosts_router, audit_router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(dashboard_router)   # the web dashboard: / and /ui/ (static files, not in the OpenAPI)
    return app
