"""The settings of a ``rest`` destination (phase one: pure, every problem a validation error).

Kept apart from :mod:`gateway.delivery.rest` (which opens connections) so that lint can check a
configuration without importing httpx. Secrets are :class:`~gateway.delivery.base.SecretRef` values
(``{env: NAME}`` or ``{file: PATH}``), read only when the destination is built.
"""

from __future__ import annotations

import difflib
import os
import re
import ssl
import string
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.delivery.base import DestinationConfig, Payload, SecretRef
from gateway.delivery.webhooks import webhook_key

__all__ = ["TEMPLATE_NAMES", "Auth", "BasicAuth", "BearerAuth", "HmacAuth", "NoAuth", "RestConfig"]

TEMPLATE_NAMES: tuple[str, ...] = tuple(
    Payload(kind="document", doc_type="", partner_id=None, correlation_id="", idempotency_key="", delivery_id=0).names()
)
"""The names a URL template may use (those of :meth:`Payload.names`)."""

# Headers the destination sets itself on every request; a static header must not override them.
RESERVED_HEADERS = frozenset(
    {
        "idempotency-key",
        "x-correlation-id",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-length",
        "host",
        "transfer-encoding",
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 field-name characters


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoAuth(_Model):
    """No credentials (``auth: none``, the default)."""

    type: Literal["none"] = "none"


class BearerAuth(_Model):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token: SecretRef


class BasicAuth(_Model):
    """``Authorization: Basic base64(username:password)``; the username is not secret, the password is."""

    type: Literal["basic"]
    username: str = Field(min_length=1)
    password: SecretRef

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        if ":" in value:
            raise ValueError("a basic-auth username cannot contain ':' (RFC 7617)")
        return value


class HmacAuth(_Model):
    """Standard Webhooks signature headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)."""

    type: Literal["hmac"]
    secret: SecretRef


Auth = Annotated[NoAuth | BearerAuth | BasicAuth | HmacAuth, Field(discriminator="type")]


class RestConfig(DestinationConfig):
    """A ``rest`` destination: one HTTP request per payload. See ``docs/destinations-rest.md``."""

    type: Literal["rest"] = "rest"
    url: str = Field(description="URL template, e.g. https://ap.example/invoices/{business_key}")
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, description="Static, non-secret headers.")
    body: str = Field(
        default="canonical",
        description="canonical: the canonical JSON (documents) or bytes as sent; else an export layout's name",
    )
    auth: Auth = Field(default_factory=NoAuth)
    verify: bool | str = Field(default=True, description="TLS verification; a path: a CA bundle (PEM)")
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)
    response_headers: list[str] = Field(
        default_factory=lambda: ["location", "retry-after", "x-request-id"],
        description="Response headers recorded with the outcome (names, any case).",
    )
    excerpt_bytes: int = Field(default=2000, ge=0, le=1_000_000)
    concurrency: int = Field(
        default=4, ge=1, le=64, description="Requests in flight at once (each on the client's pooled connections)."
    )
    conflict_is_delivered: bool = Field(
        default=True, description="HTTP 409 means the receiver already has this idempotency key: delivered."
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("auth", mode="before")
    @classmethod
    def _auth_none(cls, value: Any) -> Any:
        return {"type": "none"} if value in ("none", None) else value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        names = _template_names(value)
        unknown = [n for n in names if n not in TEMPLATE_NAMES]
        if unknown:
            hints = [f"{n!r}" + _did_you_mean(n) for n in unknown]
            raise ValueError(f"unknown name in url template: {', '.join(hints)}; known: {', '.join(TEMPLATE_NAMES)}")
        sample = value.format_map(dict.fromkeys(names, "x"))
        parts = urlsplit(sample)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an absolute http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("credentials in the url would put a secret in YAML: use auth: {type: basic, ...}")
        try:
            port = parts.port  # ValueError when not a number from 0 to 65535
        except ValueError:
            port = 0
        if port == 0 and parts.netloc.rsplit("]", 1)[-1].count(":"):
            raise ValueError(f"url port {parts.netloc.rsplit(':', 1)[-1]!r} is not a port (1-65535)")
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError(f"body is 'canonical' or the name of an export layout (maps/outbound), not {value!r}")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _TOKEN.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP field name")
            if not text.isascii() or not text.isprintable():
                raise ValueError(f"header {name!r}: a value is printable ASCII (no line break, no control character)")
            lower = name.lower()
            if lower == "authorization":
                raise ValueError("an Authorization header in YAML is a secret in YAML: use auth (bearer or basic)")
            if lower in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the destination itself and cannot be overridden")
        return value

    @field_validator("response_headers")
    @classmethod
    def _response_headers(cls, value: list[str]) -> list[str]:
        bad = [n for n in value if not _TOKEN.match(n)]
        if bad:
            raise ValueError(f"not HTTP field names: {', '.join(map(repr, bad))}")
        return [n.lower() for n in value]

    @field_validator("verify")
    @classmethod
    def _verify(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and not value.strip():
            raise ValueError("verify is true, false or the path of a CA bundle (PEM), not an empty string")
        return value

    def secrets(self) -> list[SecretRef]:
        """The secrets this destination reads when built (for lint: each must be readable)."""
        auth = self.auth
        if isinstance(auth, BearerAuth):
            return [auth.token]
        if isinstance(auth, BasicAuth):
            return [auth.password]
        if isinstance(auth, HmacAuth):
            return [auth.secret]
        return []

    def problems(self) -> list[str]:
        """What would stop the build, found without building: unreadable secrets, a missing CA bundle.

        Reads the environment and the file system (existence only), so it belongs to lint, not to
        model validation; the build raises a ConfigError for the same causes.
        """
        found = [why for ref in self.secrets() if (why := ref.problem()) is not None]
        return found + [why for _keys, why in self.lint()]

    def lint(self, home: str | None = None) -> list[tuple[tuple[str, ...], str]]:
        """What the build would refuse beyond an unreadable secret, with the keys it sits at: a CA bundle
        that is missing or not PEM (a relative path taken from ``home``, as the build does), an HMAC
        secret that is set but is not a Standard Webhooks secret. Reads files; for lint, not validation."""
        found: list[tuple[tuple[str, ...], str]] = []
        if isinstance(self.verify, str):
            path = self.verify if home is None or os.path.isabs(self.verify) else os.path.join(home, self.verify)
            if not os.path.isfile(path):
                found.append((("verify",), f"CA bundle {path} does not exist"))
            else:
                try:
                    ssl.create_default_context(cafile=path)
                except (OSError, ssl.SSLError) as exc:
                    found.append((("verify",), f"cannot load the CA bundle {path}: {exc}"))
        auth = self.auth
        if isinstance(auth, HmacAuth) and auth.secret.problem() is None:
            try:
                webhook_key(auth.secret.value())
            except ValueError as exc:  # its message never contains the secret
                found.append((("auth", "secret"), str(exc)))
        return found


def _template_names(template: str) -> list[str]:
    """The field names of a ``str.format`` template; conversions, format specs and indexing refused."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"url template: {exc} (a literal brace is written {{{{ or }}}})") from exc
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(f"url template: {{{field}}} must be a plain name such as {{business_key}}")
        names.append(field)
    return names


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, TEMPLATE_NAMES, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
