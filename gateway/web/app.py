"""The dashboard's ASGI application: :func:`create_app` wires the store, the users, the session cookie,
the security headers, the templates and the routes (pages in :mod:`gateway.web.pages`).

Security, in one place:

- every page needs a signed-in user (a session from ``/login``, or the trusted proxy header when
  ``web.trusted_header`` is set); every action needs an operator or an admin (403 otherwise);
- the session is a signed cookie (Starlette's ``SessionMiddleware``, itsdangerous), HttpOnly, SameSite=Lax,
  Secure when ``web.secure_cookie``; it holds the user name and a CSRF token that every POST must echo
  (``/login`` excepted: it has no session yet, so a cross-origin ``Origin`` is refused instead);
- failed logins are limited per client and user name (:class:`~gateway.web.auth.LoginLimiter`);
- every response says ``Content-Security-Policy: default-src 'self'``, ``X-Frame-Options: DENY`` and
  ``X-Content-Type-Options: nosniff``; templates autoescape everything (partner data is untrusted).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.partners.profile import Profile
from gateway.settings import Deployment, Web, load_settings
from gateway.store import Archive
from gateway.store.errors import NotFoundError, StoreError
from gateway.store.store import Store
from gateway.web.auth import LoginLimiter, User, Users, check_csrf, csrf_token
from gateway.web.filters import FILTERS
from gateway.workspace import load_profiles

__all__ = [
    "Dashboard",
    "LoginRequired",
    "check_post",
    "create_app",
    "dashboard",
    "flash",
    "render",
    "safe_next",
    "signed_in",
]

log = logging.getLogger("gateway.web")
HERE = Path(__file__).resolve().parent
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass
class Dashboard:
    """What every request reads: the deployment, its store and archive, the users, the login limiter."""

    deployment: Deployment
    store: Store
    config: Web
    users: Users
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    _profiles: dict[str, Profile] | None = None

    @property
    def archive(self) -> Archive:
        return Archive(self.deployment.path("archive"))

    def profiles(self) -> dict[str, Profile]:
        """The partner profiles that load (read once; restart the dashboard after changing them)."""
        if self._profiles is None:
            self._profiles = load_profiles(self.deployment.path("partners"), self.deployment.home)
        return self._profiles


class LoginRequired(Exception):
    """Raised by :func:`signed_in` when nobody is signed in: the handler redirects to ``/login``."""


class _SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` (and ``Cache-Control: no-store`` on pages) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def dashboard(request: Request) -> Dashboard:
    """The application's :class:`Dashboard`."""
    dash: Dashboard = request.app.state.dashboard
    return dash


def signed_in(request: Request, role: str = "viewer") -> User:
    """The user asking, who must hold at least ``role``: LoginRequired when nobody is signed in, 403 when
    the role is not enough or the proxy names a user the configuration does not know."""
    dash = dashboard(request)
    header = dash.config.trusted_header
    user: User | None = None
    if header and request.headers.get(header):
        name = request.headers[header].strip()
        user = dash.users.get(name)
        if user is None:
            raise HTTPException(403, f"user {name!r} (named by the {header} header) is not in gateway.yaml's web.users")
        user = User(user.name, user.role, via="header")
        csrf_token(request.session)
    else:
        user = dash.users.get(request.session.get("user"))
    if user is None:
        raise LoginRequired()
    if not user.may(role):
        raise HTTPException(403, f"{user.name} is a {user.role}: this needs an {role} (or an admin)")
    return user


def safe_next(value: object, default: str = "/") -> str:
    """``value`` when it is a path on this site (``/...``, not ``//host``), else ``default``."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    return default if parts.scheme or parts.netloc else value


def render(request: Request, template: str, user: User | None, status_code: int = 200, **context: Any) -> Response:
    """``template`` with ``context``, the user (``#whoami``), the session's CSRF token and any flash."""
    flash = request.session.pop("flash", None) if "session" in request.scope else None
    token = csrf_token(request.session) if "session" in request.scope else ""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, template, {"user": user, "csrf": token, "flash": flash, **context}, status_code=status_code
    )


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A message for the next page shown (the outcome of an action, in words)."""
    request.session["flash"] = {"text": text, "kind": kind}


def _error_user(request: Request) -> User | None:
    try:
        return signed_in(request)
    except (LoginRequired, HTTPException):
        return None


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return render(request, "error.html", _error_user(request), exc.status_code, message=exc.detail,
                  status=exc.status_code)  # fmt: skip


async def _not_found(request: Request, exc: Exception) -> Response:
    message = exc.message if isinstance(exc, NotFoundError) else str(exc)
    return render(request, "error.html", _error_user(request), 404, message=message, status=404)


async def _store_error(request: Request, exc: Exception) -> Response:
    """The store failed (unreachable, timed out): 503, in words, logged with its traceback."""
    log.error("store error on %s: %s", request.url.path, exc, exc_info=exc)
    message = f"the ledger could not be read: {getattr(exc, 'message', exc)}; try again shortly"
    return render(request, "error.html", None, 503, status=503, message=message)


async def _login_required(request: Request, exc: Exception) -> Response:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login" if wanted in ("/", "/login") else f"/login?next={quote(wanted, safe='')}"
    return RedirectResponse(target, status_code=303)


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(enabled_extensions=("html",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return Jinja2Templates(env=env)


def create_app(
    deployment: Deployment | Path,
    store: Store | None = None,
    *,
    secret: str | None = None,
    limiter: LoginLimiter | None = None,
) -> Starlette:
    """The dashboard of ``deployment`` (a :class:`Deployment`, or its home folder whose ``gateway.yaml``
    is read) on ``store`` (default: the deployment's, opened here; it must be at the newest schema).

    ``secret`` signs the session cookies (default: ``web.secret``, else a random one per process: sessions
    end when it restarts). The caller closes a store it passed in; one opened here is closed at shutdown.
    """
    if isinstance(deployment, Path):
        deployment, problems = load_settings(deployment.resolve())
        if problems.items:
            raise ValueError("; ".join(str(p) for p in problems.items))
    config = deployment.settings.web or Web()
    owned = store is None
    the_store = store if store is not None else Store(deployment.store_url)
    if secret is None and config.secret is not None:
        secret = config.secret.value()
    if secret is None:
        log.warning("web.secret is not set: sessions are signed with a random key and end when this process stops")
        secret = secrets.token_urlsafe(32)
    dash = Dashboard(deployment, the_store, config, Users(config), limiter or LoginLimiter())
    from gateway.web.pages import ROUTES  # pages import this module's helpers: imported once both exist

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                the_store.close()

    app = Starlette(
        routes=[*ROUTES, Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")],
        middleware=[
            Middleware(_SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="gateway_session",
                max_age=int(config.session_hours * 3600),
                same_site="lax",
                https_only=config.secure_cookie,
            ),
        ],
        exception_handlers={
            HTTPException: _http_error,
            NotFoundError: _not_found,
            StoreError: _store_error,
            LoginRequired: _login_required,
        },
        lifespan=lifespan,
    )
    app.state.dashboard = dash
    app.state.templates = _templates()
    return app


def check_post(request: Request, form: Any) -> None:
    """403 unless the form carries this session's CSRF token."""
    if not check_csrf(request.session, form.get("csrf_token")):
        raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page and try again")
