"""The ``rest`` destination: one HTTP request per payload, with httpx.

Every request carries ``Idempotency-Key`` (the payload's key) and ``X-Correlation-ID``; both come from
the payload, so every retry of one delivery sends the same values and a retransmission a new key.
Under ``auth: hmac`` the Standard Webhooks ``webhook-id`` is that key too, while ``webhook-timestamp``
and the signature are fresh per attempt (receivers refuse old timestamps as replays).

How an answer becomes an outcome (:func:`classify`)::

    2xx                          Delivered
    409 + conflict_is_delivered  Delivered (the receiver already has this idempotency key; noted)
    408, 425, 429, 5xx           RetryLater, delay from Retry-After (seconds or HTTP-date)
    3xx                          Rejected: redirects are not followed, the url must be the final one
    other 4xx (and 1xx)          Rejected
    timeout, refused, reset,     RetryLater (httpx's exceptions are translated here, at the boundary)
    dropped connection

Secrets are read when the destination is built (phase two); they are never logged, and any that a
receiver echoes back is redacted from the recorded response.
"""

from __future__ import annotations

import base64
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gateway.delivery.base import Delivered, Outcome, Payload, Rejected, RetryLater
from gateway.delivery.layouts import find_layout, lay_out
from gateway.delivery.registry import Registry
from gateway.delivery.rest_config import BasicAuth, BearerAuth, HmacAuth, RestConfig
from gateway.delivery.webhooks import webhook_headers, webhook_key
from gateway.errors import ConfigError
from gateway.lazy import lazy_module
from gateway.outbound.layout import Layout

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_module("httpx")  # with rich, ~0.2 s: loaded by a rest destination's first send (gateway/lazy.py)

__all__ = ["RestConfig", "RestDestination", "classify", "register", "render_url", "retry_after"]

USER_AGENT = "hospital-edi-gateway"
RETRY_STATUSES = frozenset({408, 425, 429})
REDACTED = "[redacted]"
_TIMEOUT_PHASES = {"ConnectTimeout": "connect", "ReadTimeout": "read", "WriteTimeout": "write", "PoolTimeout": "pool"}
"""httpx's timeout exceptions by class name (by name: httpx is loaded by the first destination built)."""


_OPENING = threading.Lock()
"""Held while a destination opens its client (see :meth:`RestDestination._http`)."""


def register(registry: Registry) -> None:
    """Register the ``rest`` destination type on ``registry``."""
    registry.register("destination", "rest", RestConfig, build, "HTTP POST/PUT/PATCH of each document, with httpx")


def build(name: str, config: RestConfig, context: object) -> RestDestination:
    """Phase two: read the secrets, open the HTTP client.

    From ``context`` (the composition root's BuildContext): ``clock`` (webhook timestamps, Retry-After
    dates) and ``home``, against which a relative CA bundle path is taken.
    """
    home = getattr(context, "home", None)
    if isinstance(config.verify, str) and home is not None and not Path(config.verify).is_absolute():
        config = config.model_copy(update={"verify": str(Path(str(home)) / config.verify)})
    layout = find_layout(name, config.body, context) if config.body != "canonical" else None
    return RestDestination(name, config, clock=getattr(context, "clock", None), layout=layout)


def render_url(template: str, names: dict[str, str]) -> str:
    """The template with each value percent-encoded, so a value can never change the URL's shape."""
    return template.format_map({k: quote(v, safe="-._~") for k, v in names.items()})


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds asked by a ``Retry-After`` header (delay-seconds or HTTP-date), or None when absent or bad."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT; parsedate gives a naive time for "-0000"
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def classify(status: int, response: dict[str, Any], conflict_is_delivered: bool, now: datetime) -> Outcome:
    """The outcome of an HTTP answer; ``response`` is what gets recorded (status, headers, excerpt)."""
    if 200 <= status < 300:
        return Delivered(response=response)
    if status == 409 and conflict_is_delivered:
        noted = {**response, "note": "409 Conflict taken as delivered: the key was already processed"}
        return Delivered(response=noted)
    if status in RETRY_STATUSES or status >= 500:
        wish = retry_after(response.get("retry_after"), now)
        return RetryLater(f"HTTP {status}", delay=wish, response=response)
    if 300 <= status < 400:
        where = response.get("location")
        target = f" to {where}" if where else ""
        return Rejected(
            f"HTTP {status}: redirect{target} not followed; set the destination's url to the final address",
            response=response,
        )
    return Rejected(f"HTTP {status}", response=response)


class RestDestination:
    """Delivers payloads to one HTTP endpoint; one httpx client (a connection pool) per instance."""

    def __init__(
        self,
        name: str,
        config: RestConfig,
        *,
        clock: Callable[[], datetime] | None = None,
        layout: Layout | None = None,
    ) -> None:
        """Read the secrets and the TLS settings (the client opens at the first send); a ConfigError names
        what is missing (never its value).
        ``layout``: the export layout the body is written through (``body: NAME``); None: canonical JSON."""
        self.name = name
        self.concurrency = config.concurrency  # the deliverer sends this many at once (httpx's client is thread-safe)
        self._config = config
        self._layout = layout
        self._clock = clock or (lambda: datetime.now(UTC))
        self._authorization: str | None = None
        self._hmac_key: bytes | None = None
        self._secrets: tuple[str, ...] = ()
        self._read_secrets(config)
        # A plain-http URL never uses TLS: skip building a context (certifi's bundle costs ~0.14 s at start).
        # An https one's CA bundle is loaded here, so a bad one is a ConfigError when the destination is built.
        self._verify = self._tls(config.verify) if config.url[:6].lower() == "https:" else False
        self._client: httpx.Client | None = None  # opened by the first send, see _http

    def _http(self) -> httpx.Client:
        """The HTTP client, opened by the first send: a process that builds the destination and never sends
        through it (a service whose delivery processes deliver) does not pay for importing httpx and httpcore
        (~0.2 s here). Thread-safe: the deliverer sends ``concurrency`` requests at once, and rounds send to
        several destinations side by side: one lock for every destination, because the first of them to open
        its client executes the lazily loaded httpx, and before Python 3.12 another thread reading an attribute
        meanwhile would see the module half executed (AttributeError). Every other use of httpx here comes
        after ``_http`` in the same thread."""
        client = self._client
        if client is None:
            with _OPENING:
                if self._client is None:
                    config = self._config
                    timeout = httpx.Timeout(
                        connect=config.connect_timeout_seconds,
                        read=config.read_timeout_seconds,
                        write=config.read_timeout_seconds,
                        pool=config.connect_timeout_seconds,
                    )
                    self._client = httpx.Client(
                        timeout=timeout, verify=self._verify, follow_redirects=False,
                        headers={"user-agent": USER_AGENT},
                    )  # fmt: skip
                client = self._client
        return client

    def _fail(self, why: str) -> ConfigError:
        return ConfigError(f"destination {self.name!r}: {why}", code="CFG-030")

    def _read_secrets(self, config: RestConfig) -> None:
        auth = config.auth
        try:
            if isinstance(auth, BearerAuth):
                token = auth.token.value()
                self._authorization = f"Bearer {token}"
                self._secrets = (token,)
            elif isinstance(auth, BasicAuth):
                password = auth.password.value()
                pair = base64.b64encode(f"{auth.username}:{password}".encode()).decode("ascii")
                self._authorization = f"Basic {pair}"
                self._secrets = (password, pair)
            elif isinstance(auth, HmacAuth):
                secret = auth.secret.value()
                self._hmac_key = webhook_key(secret)
                self._secrets = (secret, base64.b64encode(self._hmac_key).decode("ascii"))
        except ConfigError as exc:
            raise self._fail(f"auth {auth.type}: {exc.message}") from exc
        except ValueError as exc:  # webhook_key: not base64; its message never contains the secret
            raise self._fail(f"auth hmac: {exc}") from exc
        self._secrets = tuple(s for s in self._secrets if s)

    def _tls(self, verify: bool | str) -> bool | ssl.SSLContext:
        if not isinstance(verify, str):
            return verify
        try:
            return ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise self._fail(f"cannot load the CA bundle {verify}: {exc}") from exc

    def deliver(self, payload: Payload) -> Outcome:
        """Send ``payload`` once and say what happened; never raises for a network failure."""
        config = self._config
        url = render_url(config.url, payload.names())
        body = payload.document_bytes() if self._layout is None else lay_out(self._layout, payload)
        if isinstance(body, Rejected):  # the document cannot be written through the layout: nothing is sent
            return body
        headers = self._headers(payload, body)
        sent = {"method": config.method, "url": url}
        started = time.monotonic()
        try:
            with self._http().stream(config.method, url, content=body, headers=headers) as answer:
                response = self._record(answer, sent)
        except httpx.TimeoutException as exc:
            phase = _TIMEOUT_PHASES.get(type(exc).__name__, "request")
            limit = config.connect_timeout_seconds if phase in ("connect", "pool") else config.read_timeout_seconds
            return RetryLater(f"{phase} timeout after {limit:g} s", response={**sent, "error": type(exc).__name__})
        except httpx.TransportError as exc:  # refused, reset, dropped, TLS handshake, protocol errors
            return RetryLater(_transport_reason(exc), response={**sent, "error": type(exc).__name__})
        except httpx.InvalidURL as exc:
            return Rejected(f"invalid URL {url!r}: {exc}", response=sent)
        response["elapsed_seconds"] = round(time.monotonic() - started, 3)
        return classify(response["status"], response, config.conflict_is_delivered, self._clock())

    def _headers(self, payload: Payload, body: bytes) -> dict[str, str]:
        kind = "application/json" if payload.kind == "document" or _alert(payload) else "application/edi-x12"
        headers = {
            "content-type": kind if self._layout is None else self._layout.media_type,
            **self._config.headers,
            "idempotency-key": payload.idempotency_key,
            "x-correlation-id": payload.correlation_id,
        }
        if self._authorization is not None:
            headers["authorization"] = self._authorization
        if self._hmac_key is not None:
            stamp = int(self._clock().timestamp())
            headers.update(webhook_headers(self._hmac_key, payload.idempotency_key, stamp, body))
        return headers

    def _record(self, answer: httpx.Response, sent: dict[str, str]) -> dict[str, Any]:
        """Status, headers of interest and a body excerpt (at most ``excerpt_bytes`` read), secrets redacted."""
        wanted = self._config.response_headers
        headers = {n: self._redact(answer.headers[n]) for n in wanted if n in answer.headers}
        excerpt, truncated, error = self._excerpt(answer)
        response: dict[str, Any] = {**sent, "status": answer.status_code, "headers": headers, "excerpt": excerpt}
        if truncated:
            response["excerpt_truncated"] = True
        if error is not None:
            response["excerpt_error"] = error
        if "retry-after" in answer.headers:
            response["retry_after"] = answer.headers["retry-after"]
        if answer.is_redirect and "location" in answer.headers:  # recorded whatever response_headers says:
            response["location"] = answer.headers["location"]  # the reason names it (a 3xx may have none)
        return response

    def _excerpt(self, answer: httpx.Response) -> tuple[str, bool, str | None]:
        """The first bytes of the body. A failure while reading it keeps the status, which is the answer."""
        limit = self._config.excerpt_bytes
        chunks = bytearray()
        truncated = False
        error = None
        try:
            for chunk in answer.iter_bytes():
                chunks += chunk
                if len(chunks) > limit:
                    truncated = True
                    break
        except (httpx.TransportError, httpx.DecodingError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        text = bytes(chunks[:limit]).decode("utf-8", errors="replace")
        return self._redact(text), truncated, error

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def close(self) -> None:
        """Close the client and its pooled connections (if it was ever opened)."""
        if self._client is not None:
            self._client.close()


def _transport_reason(exc: httpx.TransportError) -> str:
    """A short reason for a failed exchange, naming the kind (refused, reset, dropped, TLS)."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        kind = "TLS handshake failed" if "SSL" in detail or "certificate" in detail else "connection failed"
    elif isinstance(exc, httpx.RemoteProtocolError):
        kind = "connection dropped"
    elif isinstance(exc, httpx.ReadError | httpx.WriteError):
        kind = "connection reset"
    else:
        kind = "transport error"
    return f"{kind}: {detail}"


def _alert(payload: Payload) -> bool:
    """An alert (``ack_overdue``..., ``recon_exception``, ``billing_event``): JSON, though recorded as an
    outbound item."""
    return payload.doc_type.startswith("ack_") or payload.doc_type in ("recon_exception", "billing_event")
