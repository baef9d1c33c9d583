"""The web dashboard (issue 14) in a real browser: headless Debian Chromium driven by Playwright against
``gateway web`` serving a deployment that ``gateway run --once`` built (see ``webbrowserkit``).

An operator logs in, finds a purchase order by its number and reads its lineage, retries a dead letter
and resolves a reconciliation exception through their confirmation pages (each checked in the ledger
through the CLI's JSON too); a viewer sees no action and is refused one; partner data holding markup
and script renders as text; a rejected set's failing element is marked in its raw segments.

A screenshot of every page visited is kept under ``$GATEWAY_SCREENSHOTS`` (default
``test-artifacts/screenshots/`` in the repository, ignored by git), named ``<test>-<user>-<nn>-<what>.png``.

Skipped when Playwright or Chromium is missing, failed instead under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webbrowserkit import (  # noqa: F401 - fixtures
    BAD_DATE,
    PO_NUMBER,
    SENT_PO,
    XSS_ITEM,
    XSS_PO,
    Deployment,
    Reply,
    Visitor,
    Web,
    browser_fixture,
    deployment_fixture,
    web_fixture,
)

with contextlib.suppress(ImportError):  # when absent, the fixtures skip (or fail under CI=true) before any test
    from playwright.sync_api import Browser, expect

# One worker builds the deployment and starts the server and the browser once for the module (`--dist loadgroup`).
pytestmark = pytest.mark.xdist_group("web_browser")


@pytest.fixture(name="login")
def login_fixture(request: pytest.FixtureRequest, browser: Browser, web: Web) -> Iterator[Callable[[str], Visitor]]:
    """``login(user)``: a fresh browser context logged in as ``user``. No JavaScript dialog may open in any
    of them (one means partner data ran as script), no script fail and the CSP refuse nothing."""
    contexts = []
    visitors: list[Visitor] = []

    def login(user: str) -> Visitor:
        context = browser.new_context()
        context.set_default_timeout(10_000)
        contexts.append(context)
        visitor = Visitor(context.new_page(), web.url, f"{request.node.name}-{user}")
        visitors.append(visitor)
        visitor.login(user)
        return visitor

    yield login
    for context in contexts:
        context.close()
    assert [d for v in visitors for d in v.dialogs] == [], "a JavaScript dialog opened: partner data ran as script"
    assert [e for v in visitors for e in v.script_errors] == [], "a script failed or the CSP refused something"


def test_an_operator_finds_a_po_by_number_and_reads_its_lineage(
    login: Callable[[str], Visitor], deployment: Deployment
) -> None:
    me = login("olivia")
    page = me.page
    at_stake = sum(Decimal(e["amount"] or 0) for e in deployment.cli("reconcile") if e["status"] == "open")
    dead = deployment.cli("deadletters", "list")
    me.visit("/", "overview")  # as the ledger is now (other tests may have acted)
    for section in ("traffic", "failures", "deadletters-summary", "acks-overdue", "recon-open", "channels", "backlog"):
        expect(page.locator(f"#{section}")).to_be_visible()
    expect(page.locator("#recon-open")).to_contain_text("medsupply")
    expect(page.locator("#recon-open")).to_contain_text(f"{at_stake:,.2f}")
    expect(page.locator("#deadletters-summary")).to_contain_text(f"{len(dead)} dead letter")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies and all(c["httpOnly"] and c["sameSite"] == "Lax" for c in cookies.values()), cookies

    me.visit("/search", "search")
    form = page.locator("form#search-form")
    form.locator("input[name=q]").fill(PO_NUMBER)
    page.evaluate("() => { window.samePage = true; }")  # survives an htmx swap, not a page load
    form.locator("input[name=q]").press("Enter")
    expect(page).to_have_url(re.compile(rf"[?&]q={PO_NUMBER}\b"))  # htmx pushes the search's URL
    rows = page.locator("table#results tr.result")
    expect(rows).not_to_have_count(0)
    me.snap("search-results")
    assert page.evaluate("() => window.samePage === true"), "the search reloaded the page: htmx did not swap"
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(PO_NUMBER)
    expect(rows.first).to_contain_text("carelink")

    with page.expect_navigation():
        rows.first.locator("a.doc-link").click()
    me.snap("lineage")
    response_headers = page.request.get(page.url).headers
    assert "default-src 'self'" in response_headers.get("content-security-policy", ""), response_headers
    assert response_headers.get("x-frame-options", "").upper() == "DENY", response_headers
    lineage = page.locator("#lineage")
    expect(lineage).to_contain_text(PO_NUMBER)
    expect(lineage).to_contain_text("purchase_order")
    expect(lineage).to_contain_text("default")  # the routing rule that matched
    expect(lineage).to_contain_text("canonical-json")
    deliveries = page.locator("#deliveries")
    expect(deliveries).to_contain_text("canonical-json")
    expect(deliveries).to_contain_text("delivered")
    expect(page.locator("#canonical")).to_contain_text(f'"po_number": "{PO_NUMBER}"')


def test_an_operator_retries_a_dead_letter_with_a_reason(
    login: Callable[[str], Visitor], deployment: Deployment
) -> None:
    dead = deployment.ids["dead_letters"]["invoice"]
    me = login("olivia")
    page = me.page
    me.visit("/deadletters", "deadletters")
    row = page.locator(f'table#deadletters tr.deadletter[data-id="{dead["id"]}"]')
    expect(row).to_contain_text("ap-api")
    expect(row).to_contain_text("400")

    refused = page.request.post(f"{me.base}/actions/deadletter-retry/{dead['id']}", form={"reason": "no token"})
    assert refused.status == 403, f"a POST without a CSRF token answered {refused.status}"
    assert deployment.cli("deliveries", "show", str(dead["id"]))["status"] == "dead_letter"

    with page.expect_navigation():
        row.locator("a.action-retry").click()
    me.snap("confirm-retry")
    form = page.locator("form#confirm-form")
    expect(form.locator("input[name=csrf_token]")).to_have_count(1)
    confirm_url = page.url
    page.locator("button#confirm").click()  # no reason given: the form is not sent
    assert page.url == confirm_url
    assert deployment.cli("deliveries", "show", str(dead["id"]))["status"] == "dead_letter"

    form.locator("textarea[name=reason]").fill("AP added the cost centre")
    with page.expect_navigation():
        page.locator("button#confirm").click()
    me.snap("after-retry")
    expect(page.locator(".flash")).to_contain_text(str(dead["id"]))

    shown = deployment.cli("deliveries", "show", str(dead["id"]))
    assert shown["status"] == "pending", shown
    last = shown["events"][-1]
    assert (last["from"], last["to"], last["reason"]) == ("dead_letter", "pending", "AP added the cost centre"), last
    assert "olivia" in (last["actor"] or ""), f"the web user is not recorded: {last}"
    me.visit("/deadletters", "deadletters-after-retry")
    expect(page.locator(f'tr.deadletter[data-id="{dead["id"]}"]')).to_have_count(0)

    deployment.receiver.default = Reply(200)  # the receiver now takes it: the retried delivery goes through
    deployment.run("deliver", "--now")
    assert deployment.cli("deliveries", "show", str(dead["id"]))["status"] == "delivered"


def test_an_operator_resolves_a_reconciliation_exception(
    login: Callable[[str], Visitor], deployment: Deployment
) -> None:
    backorder = next(e for e in deployment.ids["exceptions"] if e["kind"] == "ack_backorder")
    me = login("olivia")
    page = me.page
    me.visit(f"/recon/po/medsupply/{SENT_PO}", "po-grid")
    line2 = page.locator("table#grid tr", has_text="SYR-10ML")  # line 2: 2 of its 4 cases backordered
    expect(line2.locator(".exception")).to_have_count(1)
    expect(page.locator("table#grid")).to_contain_text("GLV-NIT-M")

    me.visit("/recon", "recon")
    link = page.locator(f'table#exceptions a.action-resolve[href$="/actions/resolve/{backorder["id"]}"]')
    expect(link).to_have_count(1)
    with page.expect_navigation():
        link.click()
    me.snap("confirm-resolve")
    page.locator("form#confirm-form textarea[name=reason]").fill("buyer accepted the backorder date")
    with page.expect_navigation():
        page.locator("button#confirm").click()
    me.snap("after-resolve")
    expect(page.locator(".flash")).to_contain_text(str(backorder["id"]))

    after = {e["id"]: e for e in deployment.cli("reconcile")}
    settled = after[backorder["id"]]
    assert (settled["status"], settled["resolved_by"]) == ("resolved", "operator"), settled
    events = deployment.cli("recon", "history", str(backorder["id"]))["events"]
    assert (events[-1]["action"], events[-1]["reason"]) == ("resolve", "buyer accepted the backorder date"), events
    assert "olivia" in (events[-1]["actor"] or ""), f"the web user is not recorded: {events[-1]}"
    others = [e for e in deployment.ids["exceptions"] if e["id"] != backorder["id"]]
    assert all(after[e["id"]]["status"] == "open" for e in others), "resolving one exception changed another"
    me.visit(f"/recon/po/medsupply/{SENT_PO}", "po-grid-after-resolve")
    expect(line2.locator(".exception")).to_have_count(0)
    me.visit("/recon", "recon-after-resolve")
    expect(page.locator(f'a.action-resolve[href$="/actions/resolve/{backorder["id"]}"]')).to_have_count(0)
    expect(page.locator("table#exceptions a.action-resolve")).to_have_count(len(others))


def test_a_viewer_sees_no_action_and_is_refused_one(login: Callable[[str], Visitor], deployment: Deployment) -> None:
    dead = deployment.ids["dead_letters"]["po_acknowledgment"]
    me = login("victor")
    page = me.page
    me.visit("/deadletters", "deadletters")
    expect(page.locator(f'tr.deadletter[data-id="{dead["id"]}"]')).to_have_count(1)
    expect(page.locator("a.action-retry, a.action-discard, a.action")).to_have_count(0)
    me.visit("/recon", "recon")
    expect(page.locator("table#exceptions tr")).not_to_have_count(0)
    expect(page.locator("a.action-resolve, a.action-waive, a.action")).to_have_count(0)
    me.visit(f"/documents/{dead['document_id']}", "lineage")
    expect(page.locator("#deliveries")).to_contain_text("ap-api")
    expect(page.locator("a.action")).to_have_count(0)

    assert me.visit(f"/actions/deadletter-retry/{dead['id']}", "confirm-refused") == 403
    expect(page.locator("form#confirm-form")).to_have_count(0)
    tokens = page.locator("input[name=csrf_token]")  # a token from the viewer's own session, if a page has one
    token = tokens.first.get_attribute("value") if tokens.count() else ""
    me.visit("/", "overview")
    tokens = page.locator("input[name=csrf_token]")
    token = token or (tokens.first.get_attribute("value") if tokens.count() else "")
    for action, target in (("deadletter-retry", dead["id"]), ("resolve", deployment.ids["exceptions"][0]["id"])):
        refused = page.request.post(
            f"{me.base}/actions/{action}/{target}", form={"reason": "a viewer tries", "csrf_token": token or ""}
        )
        assert refused.status == 403, f"{action} {target} by a viewer answered {refused.status}"
    assert deployment.cli("deliveries", "show", str(dead["id"]))["status"] == "dead_letter"
    first = deployment.ids["exceptions"][0]["id"]
    assert "a viewer tries" not in [e["reason"] for e in deployment.cli("recon", "history", str(first))["events"]]

    with page.expect_navigation():
        page.locator("form[action='/logout'] button").click()
    me.snap("signed-out")
    expect(page.locator("form#login-form")).to_have_count(1)
    me.visit("/deadletters", "deadletters-signed-out")
    assert "/login" in page.url, f"a signed-out visit was not sent to sign in: {page.url}"


def test_partner_markup_and_script_render_as_text(login: Callable[[str], Visitor], deployment: Deployment) -> None:
    document = deployment.ids["documents"][XSS_PO]
    me = login("victor")
    page = me.page
    me.visit(f"/search?q={quote(XSS_PO)}", "search-hostile")
    expect(page.locator("table#results tr.result")).to_have_count(1)
    expect(page.locator("table#results")).to_contain_text(XSS_PO)
    me.visit(f"/documents/{document}", "lineage-hostile")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#lineage")).to_contain_text(XSS_PO)
    expect(page.locator("#canonical")).to_contain_text("<img src=x onerror=")
    injected = page.evaluate(
        """() => ({
            scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('alert')).length,
            handlers: document.querySelectorAll('[onerror], img[src="x"]').length,
        })"""
    )
    assert injected == {"scripts": 0, "handlers": 0}, f"partner markup became elements: {injected}"
    assert XSS_ITEM in page.locator("body").inner_text()

    with page.expect_navigation():  # the PO number holds a "/": its grid must still be found
        page.locator("#lineage a[href^='/recon/po/carelink/']").click()
    me.snap("po-grid-hostile")
    expect(page.locator("h1")).to_contain_text(XSS_PO)
    expect(page.locator("table#grid")).to_contain_text("CRO-KNEE-T3-L")
    assert page.evaluate("() => document.querySelectorAll('[onerror], img[src=\"x\"]').length") == 0
    assert me.dialogs == []


def test_a_rejected_invoice_shows_the_failing_element_marked(
    login: Callable[[str], Visitor], deployment: Deployment
) -> None:
    """summitmed's interchange of two invoices, the second dated 2026XX05: the file's page marks that
    element alone, says what is wrong with it beside it, and links the invoice that went through."""
    me = login("ada")
    page = me.page
    me.visit(f"/files/{deployment.ids['documents']['partial-file']}", "file-rejected-set")
    expect(page.locator("#lineage")).to_contain_text("rejected")
    expect(page.locator("#lineage a[href^='/documents/']")).to_have_count(1)
    mark = page.locator("#segments mark.error-element")
    expect(mark).to_have_count(1)
    expect(mark).to_have_text(BAD_DATE)
    segment = page.locator("#segments li", has=page.locator("mark.error-element"))
    expect(segment).to_contain_text("BIG01")
    expect(segment).to_contain_text("not a valid date")  # the error in words, beside the element
