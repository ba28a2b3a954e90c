"""Fixtures of the notification tests: deployments written directly as rows, a real SMTP server
(aiosmtpd) and a real webhook receiver (http.server) on 127.0.0.1 that verifies signatures."""

import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from depot.database.core import transaction, utcnow
from depot.deployments.models import Deployment, HostResult, Step
from depot.orchestration.states import DeploymentOutcome, DeploymentState, HostStatus
from depot.policies.models import Policy

WEBHOOK_SECRET = "whsec-canary-5f1d3c9a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def factory(app):
    return app.state.sessionmaker


@pytest.fixture
def keys(app):
    return app.state.keys


@pytest.fixture
def make_policy(factory):
    def make(name):
        with transaction(factory) as session:
            policy = Policy(name=name, category="script", script="true", state="published")
            session.add(policy)
            session.flush()
            return policy.id
    return make


@pytest.fixture
def make_deployment(factory):
    """A deployment with one step (using ``policy_id`` if given) and a host result per entry of
    ``hosts`` ({host: status}); completed with ``outcome`` if given, else active."""
    def make(name="Office rollout", hosts=None, policy_id=None, outcome=None):
        now = utcnow()
        with transaction(factory) as session:
            deployment = Deployment(name=name, state=DeploymentState.ACTIVE, started_at=now)
            if outcome is not None:
                deployment.state, deployment.outcome, deployment.finished_at = (
                    DeploymentState.COMPLETED, DeploymentOutcome(outcome), now)
            session.add(deployment)
            session.flush()
            step = Step(deployment_id=deployment.id, position=1, name="install", policy_id=policy_id,
                        action=None if policy_id else "script", script=None if policy_id else "true")
            session.add(step)
            session.flush()
            for host, status in (hosts or {}).items():
                session.add(HostResult(deployment_id=deployment.id, step_id=step.id, position=1, host=host,
                                       status=HostStatus(status)))
            return deployment.id
    return make


@pytest.fixture
def set_statuses(factory):
    def set_(deployment_id, hosts):
        with transaction(factory) as session:
            for row in session.query(HostResult).filter(HostResult.deployment_id == deployment_id,
                                                        HostResult.host.in_(list(hosts))):
                row.status = HostStatus(hosts[row.host])
    return set_


class SmtpSink:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1; logins succeed with user "depot" and password "smtp-pw"."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login, auth_data.password) == (b"depot", b"smtp-pw")
        return AuthResult(success=ok, handled=False)   # not handled: aiosmtpd answers 535 itself

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


def signature_ok(secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does, as the module docstring of depot.notifications.service tells it."""
    timestamp = headers.get("X-Depot-Timestamp", "")
    if not timestamp.isdigit():
        return False
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance    # rejects replays older than 5 minutes
    return hmac.compare_digest(expected, headers.get("X-Depot-Signature", "")) and fresh


class Receiver:
    """Records every request; answers 401 to a bad signature, else the next of ``answers`` (then 200)."""

    def __init__(self, secret):
        self.secret = secret
        self.answers = []
        self.requests = []     # (path, headers, body, signature ok)
        self.lock = threading.Lock()

    def accepted(self):
        return [json.loads(body) for _path, _headers, body, ok in self.requests if ok]


@pytest.fixture
def receiver():
    receiver = Receiver(WEBHOOK_SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = signature_ok(receiver.secret, self.headers, body)
            with receiver.lock:
                receiver.requests.append((self.path, self.headers, body, ok))
                status = (receiver.answers.pop(0) if receiver.answers else 200) if ok else 401
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/hooks/depot?token=query-canary"
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join()
