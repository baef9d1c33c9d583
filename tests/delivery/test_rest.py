"""The REST destination against a real HTTP server on loopback (tests/support/httpd.py).

Each branch of the classification is driven by what the receiver really answers (or does not), and
the receiver's view is asserted: headers, idempotency keys across attempts, signatures, credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.httpd import Receiver, Reply, closed_port

from gateway.delivery.base import Delivered, Destination, Payload, Rejected, RetryLater
from gateway.delivery.registry import Registry
from gateway.delivery.rest import RestDestination, register
from gateway.delivery.rest_config import RestConfig

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
# Generous by default (a loaded CI machine answers loopback late); the timeout test sets its own.
FAST = {"connect_timeout_seconds": 5.0, "read_timeout_seconds": 5.0}


def payload(key: str = "dlv-7-a1", **over: Any) -> Payload:
    values: dict[str, Any] = {
        "kind": "document",
        "doc_type": "invoice",
        "partner_id": "medsupply",
        "correlation_id": "corr-42",
        "idempotency_key": key,
        "delivery_id": 7,
        "business_key": "INV-1001",
        "document": {"type": "invoice", "number": "INV-1001", "total": "12.50"},
    }
    values.update(over)
    return Payload(**values)


def destination(url: str, **settings: Any) -> RestDestination:
    config = RestConfig.model_validate({"type": "rest", "url": url, **FAST, **settings})
    return RestDestination("ap-invoices", config, clock=lambda: NOW)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AP_TOKEN", "tok-s3cr3t-value")
    monkeypatch.setenv("AP_PASSWORD", "pw-s3cr3t-value")
    monkeypatch.setenv("AP_WEBHOOK_SECRET", SECRET)


def deliver(url: str, item: Payload | None = None, **settings: Any) -> Any:
    dest = destination(url, **settings)
    try:
        return dest.deliver(item or payload())
    finally:
        dest.close()


# --- answers -------------------------------------------------------------------------------------


def test_200_delivered_and_the_receiver_sees_the_request(receiver: Receiver) -> None:
    receiver.script(Reply(200, {"X-Request-ID": "r-1", "X-Other": "no"}, b'{"ok":true}'))
    out = deliver(receiver.url + "/invoices/{business_key}?partner={partner}", headers={"X-Tenant": "north"})
    assert isinstance(out, Delivered)
    assert out.response["status"] == 200
    assert out.response["headers"] == {"x-request-id": "r-1"}  # only the headers of interest
    assert out.response["excerpt"] == '{"ok":true}'
    (seen,) = receiver.received
    assert (seen.method, seen.path) == ("POST", "/invoices/INV-1001?partner=medsupply")
    assert seen.headers["idempotency-key"] == "dlv-7-a1"
    assert seen.headers["x-correlation-id"] == "corr-42"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-tenant"] == "north"
    assert seen.headers["user-agent"] == "hospital-edi-gateway"
    assert "authorization" not in seen.headers
    assert json.loads(seen.body) == payload().document


def test_201_delivered_with_location_recorded(receiver: Receiver) -> None:
    receiver.script(Reply(201, {"Location": "/invoices/99"}, b"created"))
    out = deliver(receiver.url + "/invoices", method="put")
    assert isinstance(out, Delivered)
    assert out.response["headers"]["location"] == "/invoices/99"
    assert receiver.received[0].method == "PUT"


def test_409_is_delivered_by_default_and_noted(receiver: Receiver) -> None:
    receiver.script(Reply(409, body=b"duplicate idempotency key"))
    out = deliver(receiver.url)
    assert isinstance(out, Delivered)
    assert out.response["status"] == 409
    assert "already processed" in out.response["note"]


def test_409_rejected_when_conflict_is_not_delivered(receiver: Receiver) -> None:
    receiver.script(Reply(409))
    out = deliver(receiver.url, conflict_is_delivered=False)
    assert isinstance(out, Rejected)
    assert out.reason == "HTTP 409"


def test_429_retry_after_seconds(receiver: Receiver) -> None:
    receiver.script(Reply(429, {"Retry-After": "7"}))
    out = deliver(receiver.url)
    assert isinstance(out, RetryLater)
    assert (out.reason, out.delay) == ("HTTP 429", 7.0)
    assert out.response["headers"]["retry-after"] == "7"


def test_503_retry_after_http_date(receiver: Receiver) -> None:
    receiver.script(Reply(503, {"Retry-After": "Mon, 23 Nov 2026 12:01:30 GMT"}))
    out = deliver(receiver.url)
    assert isinstance(out, RetryLater)
    assert out.delay == 90.0  # against the destination's clock (NOW)


@pytest.mark.parametrize("status", [408, 425, 500, 502, 504])
def test_retryable_statuses(receiver: Receiver, status: int) -> None:
    receiver.script(Reply(status, body=b"try later"))
    out = deliver(receiver.url)
    assert isinstance(out, RetryLater)
    assert out.delay is None
    assert out.response["status"] == status
    assert out.response["excerpt"] == "try later"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_4xx_rejected(receiver: Receiver, status: int) -> None:
    receiver.script(Reply(status, body=b'{"error":"bad invoice"}'))
    out = deliver(receiver.url)
    assert isinstance(out, Rejected)
    assert out.reason == f"HTTP {status}"
    assert out.response["excerpt"] == '{"error":"bad invoice"}'


def test_redirect_not_followed(receiver: Receiver) -> None:
    receiver.script(Reply(301, {"Location": "https://elsewhere.example/in"}))
    out = deliver(receiver.url, response_headers=[])
    assert isinstance(out, Rejected)
    assert "redirect to https://elsewhere.example/in not followed" in out.reason
    assert len(receiver.received) == 1


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_without_location_is_rejected_with_its_status(receiver: Receiver, status: int) -> None:
    # Before, recording its (absent) Location raised KeyError: the attempt was retried as an internal error,
    # with no status recorded, and replayed once the receiver answered 200.
    receiver.script(Reply(status))
    out = deliver(receiver.url, response_headers=[])
    assert isinstance(out, Rejected)
    assert out.reason.startswith(f"HTTP {status}: redirect not followed")
    assert out.response["status"] == status and "location" not in out.response
    assert len(receiver.received) == 1


def test_excerpt_is_bounded(receiver: Receiver) -> None:
    receiver.script(Reply(500, body=b"x" * 50_000))
    out = deliver(receiver.url, excerpt_bytes=100)
    assert len(out.response["excerpt"]) == 100
    assert out.response["excerpt_truncated"] is True


# --- no answer -----------------------------------------------------------------------------------


def test_slow_response_past_read_timeout(receiver: Receiver) -> None:
    receiver.script(Reply(200, delay=1.0))
    started = time.monotonic()
    out = deliver(receiver.url, read_timeout_seconds=0.3)
    assert isinstance(out, RetryLater)
    assert out.reason == "read timeout after 0.3 s"
    assert time.monotonic() - started < 0.9


def test_dropped_connection(receiver: Receiver) -> None:
    receiver.script(Reply(drop=True))
    out = deliver(receiver.url)
    assert isinstance(out, RetryLater)
    assert out.reason.startswith("connection dropped")
    assert len(receiver.received) == 1  # it did arrive: the retry carries the same key


def test_reset_connection(receiver: Receiver) -> None:
    receiver.script(Reply(reset=True))
    out = deliver(receiver.url)
    assert isinstance(out, RetryLater)
    assert out.reason.startswith("connection reset")


def test_connection_refused() -> None:
    out = deliver(f"http://127.0.0.1:{closed_port()}/in")
    assert isinstance(out, RetryLater)
    assert out.reason.startswith("connection failed")
    assert out.response["error"] == "ConnectError"


# --- keys, signatures, credentials ----------------------------------------------------------------


def test_same_keys_on_every_attempt_and_one_connection(receiver: Receiver, secrets: None) -> None:
    receiver.script(Reply(500), Reply(200))
    dest = destination(receiver.url, auth={"type": "hmac", "secret": {"env": "AP_WEBHOOK_SECRET"}})
    try:
        first = dest.deliver(payload(attempt=1))
        second = dest.deliver(payload(attempt=2))
        other = dest.deliver(payload(key="dlv-8-b2"))  # a retransmission: a new delivery, a new key
    finally:
        dest.close()
    assert isinstance(first, RetryLater)
    assert isinstance(second, Delivered)
    assert isinstance(other, Delivered)
    a, b, c = receiver.received
    for name in ("idempotency-key", "x-correlation-id", "webhook-id"):
        assert a.headers[name] == b.headers[name]
    assert a.headers["webhook-id"] == a.headers["idempotency-key"] == "dlv-7-a1"
    assert c.headers["idempotency-key"] == c.headers["webhook-id"] == "dlv-8-b2"
    assert a.body == b.body
    assert a.peer_port == b.peer_port == c.peer_port  # one client, its connection reused


def standard_webhooks_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Verification as a Standard Webhooks receiver does it, written here from the spec."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    versions = [s.split(",", 1) for s in headers["webhook-signature"].split(" ")]
    return any(v == "v1" and hmac.compare_digest(sig, expected) for v, sig in versions)


def test_hmac_signature_verifies(receiver: Receiver, secrets: None) -> None:
    out = deliver(receiver.url, auth={"type": "hmac", "secret": {"env": "AP_WEBHOOK_SECRET"}})
    assert isinstance(out, Delivered)
    (seen,) = receiver.received
    assert seen.headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert standard_webhooks_verify(SECRET, seen.headers, seen.body)
    assert not standard_webhooks_verify(SECRET, seen.headers, seen.body + b" ")
    assert not standard_webhooks_verify("whsec_" + base64.b64encode(b"other").decode(), seen.headers, seen.body)


def test_hmac_secret_without_prefix_and_from_file(receiver: Receiver, tmp_path: Path) -> None:
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text(SECRET.removeprefix("whsec_") + "\n")
    deliver(receiver.url, auth={"type": "hmac", "secret": {"file": str(secret_file)}})
    (seen,) = receiver.received
    assert standard_webhooks_verify(SECRET, seen.headers, seen.body)


def test_bearer_header(receiver: Receiver, secrets: None) -> None:
    deliver(receiver.url, auth={"type": "bearer", "token": {"env": "AP_TOKEN"}})
    assert receiver.received[0].headers["authorization"] == "Bearer tok-s3cr3t-value"


def test_basic_header(receiver: Receiver, secrets: None) -> None:
    deliver(receiver.url, auth={"type": "basic", "username": "gateway", "password": {"env": "AP_PASSWORD"}})
    scheme, pair = receiver.received[0].headers["authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(pair).decode() == "gateway:pw-s3cr3t-value"


@pytest.mark.parametrize(
    ("auth", "secret_text"),
    [
        ({"type": "bearer", "token": {"env": "AP_TOKEN"}}, "tok-s3cr3t-value"),
        ({"type": "basic", "username": "gw", "password": {"env": "AP_PASSWORD"}}, "pw-s3cr3t-value"),
        ({"type": "hmac", "secret": {"env": "AP_WEBHOOK_SECRET"}}, SECRET.removeprefix("whsec_")),
    ],
    ids=["bearer", "basic", "hmac"],
)
def test_recorded_response_has_no_secret(
    receiver: Receiver, secrets: None, auth: dict[str, Any], secret_text: str
) -> None:
    # A receiver that echoes the request's headers back, in its body and in a header of interest.
    receiver.script(Reply(400, echo=True))
    out = deliver(receiver.url, auth=auth, response_headers=["x-echoed-authorization"])
    recorded = json.dumps(out.response)
    assert secret_text not in recorded
    sent = receiver.received[0].headers
    if "authorization" in sent:
        assert sent["authorization"].split(" ", 1)[1] not in recorded
        assert out.response["headers"]["x-echoed-authorization"].endswith("[redacted]")
        assert "[redacted]" in out.response["excerpt"]
    else:
        assert sent["webhook-signature"] in out.response["excerpt"]  # echoed, and not a secret


def test_outbound_bytes_sent_as_x12(receiver: Receiver) -> None:
    data = b"ISA*00*...~IEA*1*000000905~"
    deliver(receiver.url, payload(kind="outbound", doc_type="997", document=None, data=data))
    (seen,) = receiver.received
    assert seen.headers["content-type"] == "application/edi-x12"
    assert seen.body == data


def test_url_values_are_percent_encoded(receiver: Receiver) -> None:
    deliver(receiver.url + "/i/{business_key}", payload(business_key="A B?x=1#frag"))
    assert receiver.received[0].path == "/i/A%20B%3Fx%3D1%23frag"


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but the openssl command is missing (needed for the TLS tests)")
        pytest.skip("the openssl command is not installed")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    return context


def test_tls_verified_by_default_and_with_a_ca_bundle(certificate: tuple[Path, Path]) -> None:
    with Receiver(tls=tls_context(certificate)) as server:
        refused = deliver(server.url)
        trusted = deliver(server.url, verify=str(certificate[0]))
    assert isinstance(refused, RetryLater)
    assert refused.reason.startswith("TLS handshake failed")
    assert isinstance(trusted, Delivered)
    assert len(server.received) == 1


# --- registry -----------------------------------------------------------------------------------


def test_registered_and_built_through_the_registry(receiver: Receiver) -> None:
    registry = Registry()
    register(registry)
    assert registry.types("destination") == ["rest"]
    model = registry.config_model("destination", "rest")
    assert model is RestConfig
    config = model.model_validate({"type": "rest", "url": receiver.url, **FAST})
    dest = registry.build("destination", "ap", config, None)
    try:
        assert isinstance(dest, Destination)
        assert dest.name == "ap"
        assert isinstance(dest.deliver(payload()), Delivered)
    finally:
        dest.close()


def test_build_takes_clock_and_home_from_the_context(receiver: Receiver, certificate: tuple[Path, Path]) -> None:
    @dataclass
    class Context:  # the shape of gateway.components.BuildContext, without importing the composition root
        home: Path
        clock: Any

    registry = Registry()
    register(registry)
    cert = certificate[0]
    config = RestConfig.model_validate({"type": "rest", "url": receiver.url, "verify": cert.name, **FAST})
    with Receiver(tls=tls_context(certificate)) as server:
        tls_config = config.model_copy(update={"url": server.url})
        dest = registry.build("destination", "ap", tls_config, Context(cert.parent, lambda: NOW))
        try:
            hooked = dest.deliver(payload())
        finally:
            dest.close()
    assert isinstance(hooked, Delivered)  # the relative CA bundle was found under home


# A fresh interpreter: httpx not yet loaded. Several destinations send their first request at the same moment,
# each from its own thread (a round's destinations side by side); the one refused answers RetryLater.
_FIRST_SENDS = """
import sys, threading
from gateway.delivery.base import Payload, RetryLater
from gateway.delivery.rest import RestDestination
from gateway.delivery.rest_config import RestConfig
url = sys.argv[1]
dests = [RestDestination(f"d{i}", RestConfig.model_validate({"type": "rest", "url": url})) for i in range(6)]
start = threading.Barrier(len(dests))
out = []
def send(d):
    start.wait()
    out.append(d.deliver(Payload(kind="document", doc_type="invoice", partner_id="p", correlation_id="c",
                                 idempotency_key="k", delivery_id=1, data=b"{}")))
threads = [threading.Thread(target=send, args=(d,)) for d in dests]
[t.start() for t in threads]
[t.join() for t in threads]
bad = [o for o in out if not isinstance(o, RetryLater) or "AttributeError" in o.reason]
print(len(out), bad)
sys.exit(1 if bad or len(out) != len(dests) else 0)
"""


def test_destinations_opening_their_clients_at_once_all_see_httpx_whole() -> None:
    # httpx is loaded by the first send (a service whose delivery processes deliver never loads it); before
    # Python 3.12 a module loaded lazily is seen half executed by another thread while it loads.
    url = f"http://127.0.0.1:{closed_port()}/x"
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", _FIRST_SENDS, url], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
