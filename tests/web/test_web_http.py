"""The dashboard over HTTP (Starlette's TestClient) on a ledger filled by really running the gateway:
signing in and its rate limit, roles, CSRF, actions recorded with the web user, escaping of partner
data, keyset paging, 404s in words, and the security headers and cookie flags."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webkit import EVIL, PASSWORDS, csrf_of, fill_home, sign_in

from gateway.store import Store
from gateway.web.app import create_app
from gateway.web.auth import LoginLimiter

SECRET = "test-secret-" + "x" * 32


@pytest.fixture(scope="module", name="home")
def home_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fill_home(tmp_path_factory.mktemp("web") / "home").path


@pytest.fixture(name="client")
def client_fixture(home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(home, secret=SECRET)) as client:
        yield client


def store_of(home: Path) -> Store:
    return Store(f"sqlite:///{home / 'var' / 'gateway.sqlite'}")


def test_pages_need_a_signed_in_user_and_carry_the_security_headers(client: TestClient) -> None:
    r = client.get("/search?q=x", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fsearch%3Fq%3Dx"
    login = client.get("/login")
    assert login.status_code == 200 and 'id="login-form"' in login.text and 'id="login-submit"' in login.text
    assert login.headers["content-security-policy"].startswith("default-src 'self'")
    assert login.headers["x-frame-options"] == "DENY" and login.headers["x-content-type-options"] == "nosniff"
    r = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"], "next": "/search?q=x"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/search?q=x"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/")
    assert '<span id="whoami">alice (operator)</span>' in page.text
    for section in ("traffic", "failures", "deadletters-summary", "acks-overdue", "recon-open", "channels", "backlog"):
        assert f'id="{section}"' in page.text, section
    assert client.get("/static/htmx.min.js").status_code == 200


def test_a_sign_in_elsewhere_than_here_is_refused(client: TestClient) -> None:
    r = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]},
                    headers={"origin": "https://evil.example"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 403 and "another site" in r.text
    proxied = client.post(
        "/login",
        data={"username": "alice", "password": PASSWORDS["alice"]},
        headers={"origin": "https://gateway.example", "x-forwarded-host": "gateway.example"},
        follow_redirects=False,
    )
    assert proxied.status_code == 303, "a sign-in through the reverse proxy was refused"


def test_wrong_passwords_are_refused_then_rate_limited_per_client_and_user(home: Path) -> None:
    app = create_app(home, secret=SECRET, limiter=LoginLimiter(per_user=5, window=60))
    with TestClient(app) as client:
        for _ in range(5):
            r = client.post("/login", data={"username": "alice", "password": "guess"}, follow_redirects=False)
            assert r.status_code == 401 and "wrong user name or password" in r.text
        r = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]}, follow_redirects=False)
        assert r.status_code == 429 and "too many failed sign-ins for alice" in r.text, "the right password let in"
        assert client.get("/", follow_redirects=False).status_code == 303
        r = client.post("/login", data={"username": "nobody", "password": "x"}, follow_redirects=False)
        assert r.status_code == 401, "an unknown user is told the same as a wrong password"
        sign_in(client, "victor")  # another user from the same client is not locked out by alice's failures


def test_a_viewer_reads_every_page_but_cannot_act(client: TestClient, home: Path) -> None:
    sign_in(client, "victor")
    for path in ("/", "/search", "/deadletters", "/acks", "/acks?state=overdue", "/recon", "/partners"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert 'class="action' not in r.text, f"{path} offers a viewer an action"
    with store_of(home) as store:
        dead = store.list_deliveries(status="dead_letter", limit=1)[0]
    token = csrf_of(client.get("/").text)
    assert client.get(f"/actions/deadletter-retry/{dead.id}").status_code == 403
    r = client.post(f"/actions/deadletter-retry/{dead.id}", data={"csrf_token": token, "reason": "try"})
    assert r.status_code == 403 and "victor is a viewer" in r.text
    with store_of(home) as store:
        assert store.get_delivery(dead.id).status == "dead_letter"


def test_a_post_without_the_session_csrf_token_is_refused(client: TestClient, home: Path) -> None:
    sign_in(client, "alice")
    with store_of(home) as store:
        dead = store.list_deliveries(status="dead_letter", limit=1)[0]
    assert client.post(f"/actions/deadletter-discard/{dead.id}", data={"reason": "x"}).status_code == 403
    r = client.post(f"/actions/deadletter-discard/{dead.id}", data={"reason": "x", "csrf_token": "forged"})
    assert r.status_code == 403 and "CSRF" in r.text
    assert client.post("/logout", data={}).status_code == 403
    with store_of(home) as store:
        assert store.get_delivery(dead.id).status == "dead_letter"


def test_an_operator_retries_a_dead_letter_and_the_ledger_names_the_web_user(client: TestClient, home: Path) -> None:
    sign_in(client, "alice")
    listed = client.get("/deadletters").text
    ids = re.findall(r'<tr class="deadletter" data-id="(\d+)">', listed)
    assert ids, listed
    target = int(ids[0])
    confirm = client.get(f"/actions/deadletter-retry/{target}")
    assert confirm.status_code == 200 and 'id="confirm-form"' in confirm.text and 'name="reason"' in confirm.text
    token = csrf_of(confirm.text)
    empty = client.post(f"/actions/deadletter-retry/{target}", data={"csrf_token": token, "reason": "  "})
    assert empty.status_code == 400 and "a reason is required" in empty.text
    r = client.post(f"/actions/deadletter-retry/{target}", data={"csrf_token": token, "reason": "ERP folder fixed"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/deadletters"
    shown = client.get("/deadletters").text
    assert 'class="flash ok"' in shown and f"delivery {target} queued again" in shown
    assert f'data-id="{target}"' not in shown
    with store_of(home) as store:
        assert store.get_delivery(target).status == "pending"
        (event,) = [e for e in store.events_for("delivery", target) if e.action == "retry"]
    assert event.actor == "web:alice" and event.reason == "ERP folder fixed"


def test_an_operator_resolves_an_exception_with_the_cli_code(client: TestClient, home: Path) -> None:
    sign_in(client, "ada")  # an admin may do what an operator does
    page = client.get("/recon").text
    ids = re.findall(r'<tr class="exception" data-id="(\d+)">', page)
    assert ids and 'id="exceptions"' in page
    target = int(ids[0])
    token = csrf_of(client.get(f"/actions/resolve/{target}").text)
    r = client.post(f"/actions/resolve/{target}", data={"csrf_token": token, "reason": "credit note agreed"})
    assert r.status_code == 200 and f"exception {target} resolved" in r.text
    with store_of(home) as store:
        row = store.get_exception(target)
        events = store.exception_events(target)
    assert row.status == "resolved" and row.resolution == "credit note agreed"
    assert events[-1].actor == "web:ada" and events[-1].reason == "credit note agreed"
    again = client.post(f"/actions/resolve/{target}", data={"csrf_token": token, "reason": "twice"})
    assert 'class="flash error"' in again.text and "was not done" in again.text


def test_partner_data_holding_a_script_tag_renders_as_text(client: TestClient, home: Path) -> None:
    sign_in(client, "victor")
    results = client.get("/search", params={"q": EVIL})
    ids = re.findall(r'<a class="doc-link" href="/documents/(\d+)">', results.text)
    assert ids, "the evil invoice was not found by its PO number"
    pages = [results.text, client.get(f"/documents/{ids[0]}").text, client.get("/recon").text]
    with store_of(home) as store:
        assert EVIL in store.get_document(int(ids[0])).canonical.replace("\\/", "/")
    for html in pages:
        assert "<script>alert" not in html.lower(), "partner data reached the page as markup"
    lineage = pages[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in lineage
    for section in ("lineage", "deliveries", "acks", "recon", "segments", "canonical"):
        assert f'id="{section}"' in lineage, section


def test_search_pages_through_every_document_once(client: TestClient, home: Path) -> None:
    sign_in(client, "victor")
    with store_of(home) as store:
        every = {d.id for d in store.list_documents(limit=10_000)}
    assert len(every) > 12, "too few documents to page through"
    seen: list[int] = []
    url = "/search?limit=5"
    pages = 0
    while url:
        page = client.get(url.replace("&amp;", "&"))
        assert page.status_code == 200 and 'id="results"' in page.text
        seen += [int(i) for i in re.findall(r'<tr class="result" data-id="(\d+)">', page.text)]
        pages += 1
        nxt = re.search(r'<a id="next-page" href="([^"]+)"', page.text)
        url = nxt.group(1) if nxt else ""
    assert pages >= 3 and len(seen) == len(set(seen)) and set(seen) == every and seen == sorted(seen, reverse=True)
    second = client.get("/search?limit=5&after=" + str(seen[4])).text
    prev = re.search(r'<a id="prev-page" href="([^"]+)"', second)
    assert prev, "no link back to the newer page"
    back = client.get(prev.group(1).replace("&amp;", "&")).text
    assert [int(i) for i in re.findall(r'<tr class="result" data-id="(\d+)">', back)] == seen[:5]
    one = client.get("/search", params={"partner": "coastal", "type": "invoice"}).text
    assert re.findall(r'<tr class="result"', one) and "orthosupply" not in re.sub(
        r"<form.*?</form>", "", one, flags=re.S
    )
    bad = client.get("/search", params={"since": "yesterday-ish"})
    assert bad.status_code == 400 and "a duration" in bad.text
    swapped = client.get("/search", params={"since": "yesterday-ish"}, headers={"HX-Request": "true"})
    assert swapped.status_code == 200 and "a duration" in swapped.text  # htmx swaps only 2xx answers


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/documents/987654", "no document 987654 in the ledger"),
        ("/files/987654", "no file 987654 in the ledger"),
        ("/outbound/987654", "no interchange sent with id 987654"),
        ("/actions/retransmit/987654", "no document 987654 in the ledger"),
        ("/actions/deadletter-retry/987654", "no delivery 987654 in the ledger"),
        ("/actions/explode/1", "no action 'explode'"),
        ("/recon/po/medsupply/NO-SUCH-PO", "no documents for PO NO-SUCH-PO of partner medsupply"),
    ],
)
def test_unknown_ids_are_404_in_words(client: TestClient, path: str, words: str) -> None:
    sign_in(client, "alice")
    r = client.get(path)
    assert r.status_code == 404 and words in r.text.replace("&#39;", "'"), r.text[-800:]


def test_lineage_marks_the_failing_element_of_a_rejected_set(client: TestClient, home: Path) -> None:
    sign_in(client, "victor")
    with store_of(home) as store:
        (bad,) = [f for f in store.list_files(limit=100) if f.name == "856-guide-violation.edi"]
    page = client.get(f"/files/{bad.id}").text
    # PRF04 is missing: an empty element marked where it belongs, the error in words beside the segment
    assert re.search(
        r'<code>PRF\|4500012403\|\|\|<mark class="error-element" title="X12-V201 [^"]*"></mark></code>', page
    )
    assert '<span class="error-words">X12-V201 PRF04 (Date) is mandatory</span>' in page


def test_overview_and_partners_show_the_traffic_the_run_recorded(client: TestClient) -> None:
    sign_in(client, "victor")
    page = client.get("/").text
    traffic = page[page.index('id="traffic"') : page.index('id="failures"')]
    assert "coastal" in traffic and "invoice" in traffic and "medsupply" in traffic
    assert "856-guide-violation.edi" in page[page.index('id="failures"') : page.index('id="deadletters-summary"')]
    backlog = page[page.index('id="backlog"') :]
    assert "erp" in backlog and "canonical-json" in backlog
    stake = re.search(r'id="at-stake">([^<]+)<', page)
    assert stake and stake.group(1) != "0.00", "open exceptions carry no amount at stake"
    partners = client.get("/partners").text
    row = re.search(r'<tr class="partner" data-id="medsupply">(.*?)</tr>', partners, re.S)
    assert row and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row.group(1)), "no last activity for medsupply"
