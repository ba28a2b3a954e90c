"""``GET /metrics`` for Prometheus.

Every Depot figure is read from the database when it is scraped (a custom collector), not counted
in the memory of one process: any controller process - the API of ``depot serve``, one of several
behind a load balancer - answers with the same truth, whatever process did the work, and nothing
is lost when a process restarts. Each scrape runs five aggregate queries over indexed columns
(GROUP BY counts of deployments and host results, the due Ready host results, the most overdue
schedule, one pass over the runs); the process's own figures (CPU, memory, file descriptors,
garbage collection) come from prometheus-client's collectors.

Who may read it: with ``DEPOT_METRICS_TOKEN`` set, only a request with ``Authorization: Bearer
<that token>`` (Prometheus: ``authorization: {credentials_file: ...}``); without it, anyone who
reaches the API. What it shows is counts, durations and lags labelled by fixed state names only:
no names of deployments, hosts, packages or users, no addresses, no secrets.
"""

from __future__ import annotations

import hmac
import logging
from typing import Iterable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, GCCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import and_, case, extract, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from depot.database.core import first_line, utcnow
from depot.deployments.models import Deployment, HostResult, Run
from depot.orchestration.states import DeploymentOutcome, DeploymentState, HostStatus

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the run duration histogram: one ansible-playbook over a batch of
#: hosts, from a detection that finds everything installed to a long installer with a reboot.
RUN_DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)


def _seconds(dialect: str, start, end):
    """``end - start`` in seconds, as SQL."""
    if dialect == "postgresql":
        return extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0   # SQLite stores ISO text


class DatabaseCollector:
    """Depot's figures from the database, at every scrape."""

    def __init__(self, sessions):
        self.sessions = sessions

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("depot_database_up", "1 if the figures below could be read from the database, else 0")
        try:
            with self.sessions() as session:
                families = list(self._families(session))
        except SQLAlchemyError as e:
            log.warning("metrics: the database could not be read (%s): %s", type(e).__name__, first_line(e))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, session) -> Iterable[Metric]:
        now = utcnow()
        dialect = session.get_bind().dialect.name

        deployments = GaugeMetricFamily("depot_deployments", "Deployments by state", labels=["state"])
        counts = dict(session.execute(select(Deployment.state, func.count()).group_by(Deployment.state)).all())
        for state in DeploymentState:
            deployments.add_metric([state.value], counts.get(state, 0))
        yield deployments

        hosts = GaugeMetricFamily("depot_host_results", "Host results (one per deployment, step and host) by status",
                                  labels=["status"])
        counts = dict(session.execute(select(HostResult.status, func.count()).group_by(HostResult.status)).all())
        for status in HostStatus:
            hosts.add_metric([status.value], counts.get(status, 0))
        yield hosts

        # What a worker would claim now (execution/claims.py): Ready, due, of an active deployment.
        queue = session.scalar(
            select(func.count()).select_from(HostResult)
            .join(Deployment, Deployment.id == HostResult.deployment_id)
            .where(HostResult.status == HostStatus.READY, Deployment.state == DeploymentState.ACTIVE,
                   or_(HostResult.next_attempt_at.is_(None), HostResult.next_attempt_at <= now)))
        yield GaugeMetricFamily("depot_queue_depth", "Ready host results of active deployments that are due now "
                                "(waiting for a worker)", value=queue or 0)

        # What the scheduler tick would start now (scheduling/tick.py), and how late the oldest is.
        oldest = session.scalar(
            select(func.min(Deployment.schedule_next_run_at)).where(
                Deployment.schedule_rrule.is_not(None), Deployment.schedule_next_run_at <= now,
                or_(Deployment.state == DeploymentState.READY,
                    and_(Deployment.state == DeploymentState.COMPLETED,
                         Deployment.outcome != DeploymentOutcome.CANCELLED))))
        lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily("depot_scheduler_lag_seconds", "How late the most overdue scheduled deployment is "
                                "(now - its next run time; 0 when none is due)", value=lag)

        yield from self._runs(session, dialect)

    def _runs(self, session, dialect: str) -> Iterable[Metric]:
        duration = _seconds(dialect, Run.started_at, Run.finished_at)
        rows = session.execute(
            select(Run.status, func.count(), func.count(Run.finished_at), func.coalesce(func.sum(duration), 0.0),
                   func.coalesce(func.sum(Run.events), 0),
                   *(func.sum(case((duration <= bound, 1), else_=0)) for bound in RUN_DURATION_BUCKETS))
            .group_by(Run.status)).all()
        histogram = HistogramMetricFamily("depot_run_duration_seconds", "Durations of finished runs (one "
                                          "ansible-playbook over a batch of hosts) by their final status",
                                          labels=["status"])
        in_progress, events = 0, 0
        for status, total, finished, seconds, run_events, *within in rows:
            events += int(run_events)
            in_progress += total - finished
            if finished:
                buckets = [(str(float(bound)), int(n or 0)) for bound, n in zip(RUN_DURATION_BUCKETS, within)]
                histogram.add_metric([status], [*buckets, ("+Inf", finished)], float(seconds))
        yield histogram
        yield GaugeMetricFamily("depot_runs_in_progress", "Runs started and not finished", value=in_progress)
        yield CounterMetricFamily("depot_events_recorded", "ansible-runner events the controller has recorded "
                                  "(the sum over all runs, as written to the database)", value=events)


def metrics_registry(sessions) -> CollectorRegistry:
    """A registry of the database's figures and this process's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(sessions))
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def install_metrics(app: FastAPI) -> None:
    """``GET /metrics`` (outside /api/v1, not in the OpenAPI document), on ``app.state.sessionmaker``."""
    registry = metrics_registry(app.state.sessionmaker)
    app.state.metrics_registry = registry
    secret = app.state.settings.metrics_token

    def metrics(request: Request) -> Response:
        if secret is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                     secret.get_secret_value().encode()):
                raise HTTPException(401, "GET /metrics needs the metrics token (DEPOT_METRICS_TOKEN) as a bearer token",
                                    headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
