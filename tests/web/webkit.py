"""Helpers for the dashboard's HTTP tests: a deployment filled by really running the gateway on the
sample partners' files (plus a CSV invoice whose PO number and item description are HTML), users with
argon2 hashes, a destination that dead-letters invoices, and signed-in test clients.

Not a ``conftest.py`` (see tests/runtime/runtimekit.py): test modules import what they use.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtimekit import SAMPLE_DROPS, Home, case, gateway, make_home

from gateway.web.auth import hash_password

__all__ = ["EVIL", "PASSWORDS", "csrf_of", "fill_home", "sign_in"]

EVIL = "<script>alert(1)</script>"
PASSWORDS = {"alice": "alice-secret-1", "victor": "victor-secret-2", "ada": "ada-secret-3"}
ROLES = {"alice": "operator", "victor": "viewer", "ada": "admin"}


def evil_invoice() -> bytes:
    """Coastal's CSV invoice case with a PO number and an item description that are a script tag."""
    text = case("coastal", "inv_20260315.csv").decode("utf-8")
    lines = text.splitlines()
    out = [lines[0]]
    for line in lines[1:3]:  # the first invoice: its two lines
        fields = line.split(";")
        fields[0] = "CMS-EVIL-1"
        fields[3] = EVIL
        if not fields[8].startswith('"'):
            fields[8] = f"Gloves {EVIL}"
        out.append(";".join(fields))
    return ("\n".join(out) + "\n").encode("utf-8")


def fill_home(root: Path) -> Home:
    """A SQLite deployment in ``root``: users, an ``erp`` destination that cannot write (invoices routed
    there become dead letters after one attempt), every sample case and the evil invoice run through
    ``gateway run --once``."""
    users = [{"name": n, "role": ROLES[n], "password_hash": hash_password(p)} for n, p in PASSWORDS.items()]
    home = make_home(
        root,
        f"sqlite:///{root / 'var' / 'gateway.sqlite'}",
        stable_seconds=0,
        extra={
            "web": {"users": users},
            "destinations": {
                "canonical-json": {
                    "type": "files",
                    "folder": "outbox/canonical",
                    "name": "{partner}/{doc_type}-{file_id}-{position}.json",
                },
                "erp": {
                    "type": "files",
                    "folder": "outbox/erp",
                    "name": "{doc_type}-{file_id}-{position}.json",
                    "retry": {"max_attempts": 1},
                },
            },
            "routes": [
                {
                    "name": "invoices",
                    "match": {"direction": "inbound", "doc_type": "invoice"},
                    "to": ["canonical-json", "erp"],
                },
                {"name": "default", "match": {"direction": "inbound"}, "to": ["canonical-json"]},
            ],
        },
    )
    (root / "outbox").mkdir(parents=True, exist_ok=True)
    (root / "outbox" / "erp").write_text("a file where the ERP's folder should be")  # every write fails
    for folder, partner, name in SAMPLE_DROPS:
        home.drop(name, case(partner, name), folder)
    home.drop("inv_evil.csv", evil_invoice(), "coastal")
    run = gateway(home, "run", "--once", timeout=300)
    assert run.returncode in (1, 6), run.stdout + run.stderr  # a guide violation fails; dead letters wait
    return home


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: TestClient, name: str) -> TestClient:
    """Sign ``client`` in as ``name`` (one of :data:`PASSWORDS`)."""
    r = client.post("/login", data={"username": name, "password": PASSWORDS[name]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return client
