"""Shared parts of the dashboard's real-browser tests (issue 14): a deployment built by the real gateway,
``gateway web`` serving it as a subprocess on loopback, and Debian's Chromium driven by Playwright.

Not a conftest (``tests/`` has no packages): the test module imports the fixtures from here.

The deployment (one per test module, ``gateway run --once`` over real files) holds:

- our purchase order 4500012345 to medsupply, sent from the send folder, then medsupply's 855 (line 2
  backordered) and 810 (its total does not add up): open reconciliation exceptions on that PO;
- medsupply's documents routed to ``ap-api``, a REST destination on a loopback receiver that answers
  400: each is a dead letter at once (``Receiver`` keeps running, so a retry can be delivered later);
- CareLink's inbound cXML purchase order :data:`PO_NUMBER`, routed to ``canonical-json``;
- a second CareLink order whose PO number and item descriptions carry HTML and script (:data:`XSS_PO`);
- summitmed's 810 interchange with two invoices, the second dated :data:`BAD_DATE` (rejected);
- one user per role (:data:`USERS`), their passwords hashed by ``gateway web hash-password``.

Chromium is ``$GATEWAY_TEST_CHROMIUM`` (default ``/usr/bin/chromium``, Debian's package), launched by its
path: no browser is downloaded. Without Playwright or Chromium the tests skip, except under ``CI=true``
where they fail. Screenshots of every page a test visits go to ``$GATEWAY_SCREENSHOTS`` (default
``test-artifacts/screenshots/`` in the repository, ignored by git), one file per visit,
``<test>-<user>-<nn>-<what>.png``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from conftest import unavailable
from runtimekit import GATEWAY, REPO, Home, case, gateway, make_home, x12

from tests.support.httpd import Receiver, Reply
from tests.support.sshd import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = [
    "BAD_DATE",
    "PO_NUMBER",
    "SENT_PO",
    "USERS",
    "XSS_ITEM",
    "XSS_PO",
    "Deployment",
    "Reply",
    "Visitor",
    "browser_fixture",
    "deployment_fixture",
    "web_fixture",
]

CHROMIUM = Path(os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("GATEWAY_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots")
SAMPLES = REPO / "samples" / "x12"

PO_NUMBER = "MGH-BO-7712"  # CareLink's inbound order (partners/carelink/cases/order_bill_only.xml)
SENT_PO = "4500012345"  # our 850 to medsupply (samples/canonical/purchase-order.json)
XSS_PO = "MGH-XSS-<script>alert('po')</script>"
XSS_ITEM = "<img src=x onerror=alert('item')>Tibial tray"
BAD_SET = frozenset({2})  # summitmed's 810 interchange: its second invoice dated 2026XX05, rejected
BAD_DATE = "2026XX05"
USERS = {"olivia": "operator", "victor": "viewer", "ada": "admin"}
PASSWORD = "correct horse battery staple"  # every test user's


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401 - only probing that it is installed
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium, or set GATEWAY_TEST_CHROMIUM)"
    return None


# --- the deployment ----------------------------------------------------------------------------


def _numbered(text: str, number: int) -> bytes:
    """A sample interchange with ISA13/GS06/GE02/IEA02 set to ``number`` (none is an ISA13 duplicate)."""
    out = []
    for seg in (s for s in text.replace("\n", "").split("~") if s.strip()):
        parts = seg.split("*")
        if parts[0] in ("ISA", "IEA"):
            parts[13 if parts[0] == "ISA" else 2] = f"{number:09d}"
        elif parts[0] in ("GS", "GE"):
            parts[6 if parts[0] == "GS" else 2] = str(number)
        out.append("*".join(parts))
    return ("~\n".join(out) + "~\n").encode()


def _xml_text(value: str) -> bytes:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;").encode()


def _hostile_order() -> bytes:
    """CareLink's order with markup and script in its PO number and an item description."""
    data = case("carelink", "order_bill_only.xml")
    data = data.replace(b'orderID="MGH-BO-7712"', b'orderID="' + _xml_text(XSS_PO) + b'"')
    data = data.replace(b"Tibial tray size 3, left", _xml_text(XSS_ITEM))
    return data.replace(b'payloadID="', b'payloadID="xss-')


@dataclass
class Deployment:
    """The deployment, the ledger ids the tests act on, and the REST receiver its dead letters came from."""

    home: Home
    receiver: Receiver
    ids: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str) -> Any:
        """``gateway ARGS --json`` in process (imports already paid), parsed."""
        done = self.run(*args, "--json")
        assert done.exit_code == 0, f"gateway {' '.join(args)}: {done.output}"
        return json.loads(done.stdout)

    def run(self, *args: str) -> Any:
        """``gateway ARGS`` in process: click's result (exit code, output)."""
        from click.testing import CliRunner

        from gateway.cli.main import main

        return CliRunner().invoke(main, [*args, "--home", str(self.home.path)])


def _hash(password: str) -> str:
    """An argon2 hash from ``gateway web hash-password`` (run in process: the command, not a copy of it)."""
    from click.testing import CliRunner

    from gateway.cli.main import main

    done = CliRunner().invoke(main, ["web", "hash-password"], input=f"{password}\n")
    assert done.exit_code == 0, f"gateway web hash-password: {done.output}"
    hashed = done.stdout.strip().splitlines()[-1]
    assert hashed.startswith("$argon2"), hashed
    return hashed


def _settings(receiver: Receiver, secret: Path) -> dict[str, Any]:
    """Routes to the receiver; the web users, their session key in a file (every process reads it, none
    needs it in its environment)."""
    secret.write_text("browser-tests-secret-0123456789abcdef\n", "utf-8")
    return {
        "destinations": {
            "canonical-json": {"type": "files", "folder": "outbox/canonical"},
            "ap-api": {"type": "rest", "url": f"{receiver.url}/documents", "retry": {"max_attempts": 1}},
        },
        "routes": [
            {"name": "medsupply-to-ap", "match": {"partner": "medsupply"}, "to": ["ap-api", "canonical-json"]},
            {"name": "default", "match": {"direction": "inbound"}, "to": ["canonical-json"]},
        ],
        "web": {
            "secret": {"file": str(secret)},
            "users": [{"name": n, "role": r, "password_hash": _hash(PASSWORD)} for n, r in USERS.items()],
        },
    }


@pytest.fixture(scope="module", name="deployment")
def deployment_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The deployment described in the module docstring, processed by ``gateway run --once``."""
    if missing := browser_missing():
        unavailable(missing)
    root = tmp_path_factory.mktemp("webhome")
    with Receiver(default=Reply(400, body=b'{"error": "unknown cost centre"}')) as receiver:
        home = make_home(root, f"sqlite:///{root / 'var' / 'gateway.sqlite'}", stable_seconds=0)
        settings = json.loads((root / "gateway.yaml").read_text("utf-8"))
        settings.update(_settings(receiver, root / "web-secret"))
        (root / "gateway.yaml").write_text(json.dumps(settings, indent=2), "utf-8")
        send = home.path / "send" / "medsupply"
        send.mkdir(parents=True)
        (send / "po.json").write_bytes((REPO / "samples" / "canonical" / "purchase-order.json").read_bytes())
        home.drop("855.edi", _numbered((SAMPLES / "855-4010-medsupply-ack.edi").read_text("utf-8"), 201), "medsupply")
        home.drop(
            "810.edi", _numbered((SAMPLES / "810-4010-medsupply-invoice.edi").read_text("utf-8"), 401), "medsupply"
        )
        home.drop("order.xml", case("carelink", "order_bill_only.xml"))
        bad = x12(REPO / "partners" / "summitmed" / "cases" / "810-contract-price.edi", 9001, sets=2, bad=BAD_SET)
        home.drop("810-bad-date.edi", bad, "summitmed")
        home.drop("order-xss.xml", _hostile_order())
        done = gateway(home, "run", "--once")
        assert done.returncode == 1, f"expected exit 1 (a set rejected): {done.stdout}{done.stderr}"
        deployment = Deployment(home, receiver)
        deployment.ids = _ids(deployment)
        yield deployment


def _ids(deployment: Deployment) -> dict[str, Any]:
    """The ledger ids the tests need, read through the CLI's JSON."""
    files = deployment.cli("messages", "list")
    statuses = sorted(f["status"] for f in files if f["direction"] == "in")
    assert statuses == ["partial"] + ["processed"] * 4, files
    dead = deployment.cli("deadletters", "list")
    assert sorted(d["doc_type"] for d in dead) == ["invoice", "po_acknowledgment"], dead
    exceptions = deployment.cli("recon", "list", "--open")
    assert SENT_PO in {e["po_number"] for e in exceptions}, exceptions
    from gateway.store import Store

    with Store(deployment.home.store_url) as store:
        listed = store.list_documents()
    documents = {po: d.id for d in listed for po in (PO_NUMBER, XSS_PO) if f":{po}:" in (d.business_key or "")}
    assert {PO_NUMBER, XSS_PO} <= set(documents), documents
    (partial,) = [f["id"] for f in files if f["name"] == "810-bad-date.edi" and f["status"] == "partial"]
    documents["partial-file"] = int(partial)
    return {"dead_letters": {d["doc_type"]: d for d in dead}, "exceptions": exceptions, "documents": documents}


# --- the web server ----------------------------------------------------------------------------


@dataclass
class Web:
    """``gateway web`` running on loopback; ``url`` is its base address."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module", name="web")
def web_fixture(deployment: Deployment) -> Iterator[Web]:
    """``gateway web --home H --port P`` as a real process, up once ``/login`` answers."""
    if missing := browser_missing():
        unavailable(missing)
    port = free_port()
    log = deployment.home.path / "web.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*GATEWAY, "web", "--home", str(deployment.home.path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    web = Web(f"http://127.0.0.1:{port}", proc, log)
    try:
        _wait_up(web)
        yield web
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _wait_up(web: Web, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if web.proc.poll() is not None:
            pytest.fail(f"gateway web exited {web.proc.returncode}: {web.log.read_text('utf-8', 'replace')[-3000:]}")
        try:
            if httpx.get(f"{web.url}/login", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"gateway web not answering on {web.url} after {timeout} s: {web.log.read_text('utf-8')}")
        time.sleep(0.1)


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Browser]:
    """Headless Chromium from the distribution, launched by its path (``--no-sandbox``: tests run as root)."""
    if missing := browser_missing():
        unavailable(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


class Visitor:
    """One user's browser session: every navigation screenshotted, every JavaScript dialog recorded.

    A dialog (``alert``, ``confirm``...) means partner data ran as script: tests assert ``dialogs`` stays
    empty; ``script_errors`` too (a script that failed, or markup the Content-Security-Policy refused:
    an inline script or style of the app's own, or partner markup that became an element).
    ``visit``/``snap`` name the screenshots ``<test>-<user>-<nn>-<what>.png`` under :data:`SCREENSHOTS`.
    """

    def __init__(self, page: Page, base: str, test: str) -> None:
        self.page = page
        self.base = base
        self.test = re.sub(r"[^A-Za-z0-9_-]+", "_", test)
        self.dialogs: list[str] = []
        self.script_errors: list[str] = []  # uncaught exceptions, and what the page's CSP refused
        self.shots: list[Path] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.script_errors.append(f"{page.url}: {error}"))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.script_errors.append(f"{self.page.url}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def snap(self, what: str) -> Path:
        """A full-page screenshot of what the browser shows now."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test}-{len(self.shots) + 1:02d}-{re.sub(r'[^A-Za-z0-9_-]+', '_', what)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def visit(self, path: str, what: str) -> int:
        """Go to ``path`` (relative to the server); the HTTP status of the page reached."""
        response = self.page.goto(f"{self.base}{path}")
        self.snap(what)
        assert response is not None, path
        return response.status

    def login(self, user: str, password: str = PASSWORD) -> None:
        """Through the login form; lands on the overview, which names the user and role."""
        self.visit("/login", "login")
        form = self.page.locator("form#login-form")
        form.locator("input[name=username]").fill(user)
        form.locator("input[name=password]").fill(password)
        with self.page.expect_navigation():
            self.page.locator("button#login-submit").click()
        self.snap("after-login")
        whoami = self.page.locator("#whoami").inner_text()
        assert user in whoami and USERS[user] in whoami, whoami
