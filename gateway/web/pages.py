"""The dashboard's routes: login, the pages (each a read through the same store calls as its command)
and the actions (a confirmation page, then the command's own code; see :mod:`gateway.web.actions`).

Page handlers are plain functions: Starlette runs them in its thread pool, so the store's blocking
calls never hold the event loop. Handlers that read a form are async and hand the store work to the
pool themselves.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import click
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.cli.messages_cli import when
from gateway.cli.recon_cli import po_grid
from gateway.cli.status_cli import dashboard as status_board
from gateway.errors import GatewayError
from gateway.store.errors import NotFoundError
from gateway.store.search import STATUSES, MessageFilter, resolve_types
from gateway.web.actions import ACTIONS
from gateway.web.app import check_post, dashboard, flash, render, safe_next, signed_in
from gateway.web.lineage import document_lineage, file_lineage

__all__ = ["ROUTES"]

PAGE_SIZE = 50
MAX_PAGE = 500


# --- signing in ------------------------------------------------------------------------------------


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def login_page(request: Request) -> Response:
    if dashboard(request).users.get(request.session.get("user")) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return render(request, "login.html", None, next=safe_next(request.query_params.get("next"), ""))


async def login(request: Request) -> Response:
    dash = dashboard(request)
    origin = request.headers.get("origin")
    # A browser says where a form was posted from; this site is the Host asked for, or the one a reverse
    # proxy forwarded (a cross-site form post cannot set either header).
    here = {request.headers.get("host"), request.headers.get("x-forwarded-host")} - {None}
    if origin and origin != "null" and urlsplit(origin).netloc not in here:
        raise HTTPException(403, f"a sign-in posted from another site ({origin}) is refused")
    form = await request.form()
    name = str(form.get("username") or "").strip()[:64]
    password = str(form.get("password") or "")
    target = safe_next(form.get("next"))
    client = _client(request)
    wait = dash.limiter.retry_after(client, name)
    if wait is not None:
        error = f"too many failed sign-ins for {name or 'this address'}: try again in {int(wait) + 1} s"
        return render(request, "login.html", None, 429, next=target, username=name, error=error)
    user = await run_in_threadpool(dash.users.verify, name, password) if name and password else None
    if user is None:
        dash.limiter.failed(client, name)
        return render(request, "login.html", None, 401, next=target, username=name,
                      error="wrong user name or password")  # fmt: skip
    dash.limiter.succeeded(client, name)
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
    request.session["user"] = user.name
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    check_post(request, await request.form())
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# --- pages -----------------------------------------------------------------------------------------


def overview(request: Request) -> Response:
    user = signed_in(request)
    dash = dashboard(request)
    store = dash.store
    now = datetime.now(UTC)
    today = datetime.combine(now.date(), time(), UTC)
    week = today - timedelta(days=today.weekday())
    board = status_board(dash.deployment, store, today, now)
    return render(
        request, "overview.html", user, board=board, now=now,
        today=board["by_type"], week=store.traffic_by_type(week), week_start=week,
        deadletters=store.list_deliveries(status="dead_letter", limit=10),
        overdue=store.list_owed_acks(status=["overdue"], limit=10),
        recon=store.open_exceptions_by_partner(),
    )  # fmt: skip


def _filter(params: Any, limit: int) -> tuple[MessageFilter | None, str | None]:
    now = datetime.now(UTC)
    text = {k: (params.get(k) or "").strip() or None for k in
            ("q", "partner", "type", "direction", "status", "since", "until", "control")}  # fmt: skip
    try:
        found = MessageFilter(
            partner=text["partner"],
            types=resolve_types([text["type"]]) if text["type"] else (),
            direction=text["direction"],
            status=text["status"],
            since=when(text["since"], now) if text["since"] else None,
            until=when(text["until"], now, end=True) if text["until"] else None,
            control=text["control"],
            key=text["q"],
            limit=limit,
        )
    except (GatewayError, click.BadParameter) as exc:
        return None, exc.message if isinstance(exc, GatewayError) else exc.format_message()
    return found, None


def _int(value: str | None, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError as exc:
        raise HTTPException(400, f"{what} {value!r} is not a number") from exc


def search(request: Request) -> Response:
    user = signed_in(request)
    params = request.query_params
    size = _int(params.get("limit"), "limit") or PAGE_SIZE
    if not 1 <= size <= MAX_PAGE:
        raise HTTPException(400, f"limit {size}: a page holds 1 to {MAX_PAGE} documents")
    wanted, problem = _filter(params, size)
    after, before = _int(params.get("after"), "after"), _int(params.get("before"), "before")
    page = None
    sent: list[Any] = []
    if wanted is not None and wanted.direction == "out":
        sent = dashboard(request).store.list_messages(wanted)
    elif wanted is not None:
        page = dashboard(request).store.search_documents(wanted, after=after, before=before)
    kept = {k: v for k, v in params.items() if k not in ("after", "before") and v}
    links = {}
    if page is not None and page.older and page.last_id is not None:
        links["next"] = "/search?" + urlencode({**kept, "after": page.last_id})
    if page is not None and page.newer and page.first_id is not None:
        links["prev"] = "/search?" + urlencode({**kept, "before": page.first_id})
        links["first"] = "/search?" + urlencode(kept)
    # htmx swaps only 2xx answers: a search form sent by htmx gets its problem shown with a 200
    failed = 400 if problem and "hx-request" not in request.headers else 200
    return render(request, "search.html", user, failed, page=page, sent=sent, problem=problem,
                  params=params, links=links, statuses=STATUSES)  # fmt: skip


def document(request: Request) -> Response:
    user = signed_in(request)
    dash = dashboard(request)
    document_id = int(request.path_params["document_id"])
    try:
        lineage = document_lineage(dash.store, dash.archive, document_id)
    except NotFoundError as exc:
        raise HTTPException(404, f"no document {document_id} in the ledger (see Search)") from exc
    return render(request, "document.html", user, l=lineage, here=request.url.path)


def file(request: Request) -> Response:
    user = signed_in(request)
    dash = dashboard(request)
    file_id = int(request.path_params["file_id"])
    try:
        lineage = file_lineage(dash.store, dash.archive, file_id)
    except NotFoundError as exc:
        raise HTTPException(404, f"no file {file_id} in the ledger (see Search)") from exc
    return render(request, "file.html", user, fl=lineage, here=request.url.path)


def outbound(request: Request) -> Response:
    user = signed_in(request)
    store = dashboard(request).store
    outbound_id = int(request.path_params["outbound_id"])
    try:
        row = store.get_outbound(outbound_id)
    except NotFoundError as exc:
        raise HTTPException(404, f"no interchange sent with id {outbound_id} in the ledger") from exc
    delivered = sorted(store.list_deliveries(outbound_id=outbound_id, limit=1000), key=lambda d: d.id)
    attempts = store.attempts_of([d.id for d in delivered])
    return render(
        request, "outbound.html", user, o=row, keys=store.keys_of_outbound(outbound_id),
        deliveries=[{"row": d, "tries": attempts.get(d.id, [])} for d in delivered],
        owed=store.list_owed_acks(outbound_id=outbound_id, limit=1000),
        received=store.list_ack_receipts(outbound_id=outbound_id, limit=100),
        events=sorted(store.events_for("outbound", outbound_id), key=lambda e: e.id),
    )  # fmt: skip


def deadletters(request: Request) -> Response:
    user = signed_in(request)
    params = request.query_params
    rows = dashboard(request).store.list_deliveries(
        status="dead_letter", destination=params.get("destination") or None, partner_id=params.get("partner") or None,
        limit=200,
    )  # fmt: skip
    return render(request, "deadletters.html", user, rows=rows, params=params)


ACK_STATES = ("waiting", "overdue", "rejected")


def acks(request: Request) -> Response:
    user = signed_in(request)
    state = request.query_params.get("state") or None
    if state is not None and state not in ACK_STATES:
        raise HTTPException(400, f"state {state!r}: one of {', '.join(ACK_STATES)}")
    store = dashboard(request).store
    rows = store.list_owed_acks(status=[state] if state else None, limit=200)
    return render(request, "acks.html", user, rows=rows, state=state, counts=store.owed_ack_counts(),
                  states=ACK_STATES)  # fmt: skip


def recon(request: Request) -> Response:
    user = signed_in(request)
    partner = request.query_params.get("partner") or None
    rows = dashboard(request).store.list_exceptions(partner_id=partner, status="open", limit=1000)
    by_partner: dict[str, list[Any]] = defaultdict(list)
    for e in rows:
        by_partner[e.partner_id].append(e)
    return render(request, "recon.html", user, by_partner=dict(sorted(by_partner.items())), partner=partner,
                  here=request.url.path)  # fmt: skip


COLUMNS = {"ack": "acknowledged", "ship": "shipped", "invoice": "invoiced"}
"""An exception kind's prefix → the grid column it marks (others mark the line's ordered cell)."""


def po(request: Request) -> Response:
    user = signed_in(request)
    dash = dashboard(request)
    partner, number = request.path_params["partner"], request.path_params["po"]
    try:
        data, chain, lines, found = po_grid(dash.deployment, dash.store, partner, number, datetime.now(UTC))
    except NotFoundError as exc:
        raise HTTPException(404, f"no documents for PO {number} of partner {partner}") from exc
    marks: dict[tuple[str | None, str], list[Any]] = defaultdict(list)
    for e in found:
        if e.status == "open":
            marks[(e.line, COLUMNS.get(e.kind.split("_")[0], "ordered"))].append(e)
    return render(request, "po.html", user, partner=partner, po=number, docs=data.docs, order=chain.order,
                  lines=lines, marks=marks, found=found, here=request.url.path)  # fmt: skip


def partners(request: Request) -> Response:
    user = signed_in(request)
    dash = dashboard(request)
    from gateway.runtime.sftp_pull import read_states

    profiles = sorted(dash.profiles().values(), key=lambda p: p.id)
    last = dash.store.last_activity([p.id for p in profiles])
    return render(request, "partners.html", user, profiles=profiles, last=last,
                  channels=read_states(dash.deployment.path("run")))  # fmt: skip


# --- actions ---------------------------------------------------------------------------------------


def _action(request: Request) -> tuple[Any, int]:
    name = request.path_params["action"]
    action = ACTIONS.get(name)
    if action is None:
        raise HTTPException(404, f"no action {name!r} (actions: {', '.join(ACTIONS)})")
    return action, int(request.path_params["entity_id"])


def confirm(request: Request) -> Response:
    user = signed_in(request, "operator")
    action, entity_id = _action(request)
    try:
        what = action.describe(dashboard(request), entity_id)
    except NotFoundError as exc:
        raise HTTPException(404, f"no {action.subject} {entity_id} in the ledger") from exc
    back = safe_next(request.query_params.get("back"), action.back(entity_id))
    return render(request, "confirm.html", user, action=action, entity_id=entity_id, what=what, back=back)


async def act(request: Request) -> Response:
    user = signed_in(request, "operator")
    action, entity_id = _action(request)
    form = await request.form()
    check_post(request, form)
    reason = str(form.get("reason") or "").strip()
    back = safe_next(form.get("back"), action.back(entity_id))
    dash = dashboard(request)
    if not reason:
        try:
            what = await run_in_threadpool(action.describe, dash, entity_id)
        except NotFoundError as exc:
            raise HTTPException(404, f"no {action.subject} {entity_id} in the ledger") from exc
        return render(request, "confirm.html", user, 400, action=action, entity_id=entity_id, what=what, back=back,
                      error="a reason is required: it is recorded with the action")  # fmt: skip
    try:
        outcome = await run_in_threadpool(action.run, dash, entity_id, reason[:2000], user.actor)
    except NotFoundError as exc:
        raise HTTPException(404, f"no {action.subject} {entity_id} in the ledger") from exc
    except GatewayError as exc:
        flash(request, f"{action.title} {entity_id} was not done: {getattr(exc, 'message', str(exc))}", "error")
        return RedirectResponse(back, status_code=303)
    flash(request, f"{outcome} (by {user.actor}: {reason[:200]})")
    return RedirectResponse(back, status_code=303)


def _one_snapshot(page: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """``page`` with all its store reads in one read transaction: one consistent view, and one connection
    checkout instead of a dozen (each a few round trips that wait for the CPU on a busy host; docs/performance.md)."""

    @functools.wraps(page)
    def in_one_snapshot(request: Request) -> Response:
        with dashboard(request).store.snapshot(f"render {request.url.path}"):
            return page(request)

    return in_one_snapshot


ROUTES = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/", _one_snapshot(overview)),
    Route("/search", _one_snapshot(search)),
    Route("/documents/{document_id:int}", _one_snapshot(document)),
    Route("/files/{file_id:int}", _one_snapshot(file)),
    Route("/outbound/{outbound_id:int}", _one_snapshot(outbound)),
    Route("/deadletters", _one_snapshot(deadletters)),
    Route("/acks", _one_snapshot(acks)),
    Route("/recon", _one_snapshot(recon)),
    Route("/recon/po/{partner}/{po:path}", _one_snapshot(po)),  # a PO number may hold "/" (PO/2026/001)
    Route("/partners", _one_snapshot(partners)),
    Route("/actions/{action}/{entity_id:int}", _one_snapshot(confirm), methods=["GET"]),
    Route("/actions/{action}/{entity_id:int}", act, methods=["POST"]),
]
"""Every route (``/static`` is mounted by :func:`gateway.web.app.create_app`)."""
