"""What operators watch: ``GET /metrics`` for Prometheus (:mod:`.metrics`) and log lines as text or
JSON carrying the request and run they belong to (:mod:`.logs`)."""

from __future__ import annotations

from depot.observability.logs import log_context

__all__ = ["install_observability", "log_context"]


def install_observability(app) -> None:
    """``GET /metrics``, and an id for every request (``X-Request-ID``, on its log lines). Call it
    after the other middlewares are added: the request id then covers what they answer too."""
    from depot.observability.logs import RequestIdMiddleware
    from depot.observability.metrics import install_metrics

    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)
