"""``gateway web`` as a user runs it: a real uvicorn process on a free loopback port answering /login,
``gateway web hash-password``, the refusal to start without users, the trusted proxy header, and
``gateway config lint`` on a wrong ``web:`` section."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtimekit import GATEWAY, gateway, make_home

from gateway.cli.main import main
from gateway.web.app import create_app
from gateway.web.auth import hash_password


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def home_with(tmp_path: Path, web: dict | None):
    extra = {"web": web} if web is not None else {}
    home = make_home(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'var' / 'gateway.sqlite'}", extra=extra)
    assert gateway(home, "db", "upgrade").returncode == 0
    return home


def test_the_gateway_web_process_serves_the_login_page_on_loopback(tmp_path: Path) -> None:
    home = home_with(
        tmp_path, {"users": [{"name": "alice", "role": "operator", "password_hash": hash_password("pw-1")}]}
    )
    port = free_port()
    log = (tmp_path / "web.err").open("wb")
    proc = subprocess.Popen([*GATEWAY, "web", "--home", str(home.path), "--port", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, (tmp_path / "web.err").read_text()
                assert time.monotonic() < deadline, "gateway web did not answer within 60 s"
                time.sleep(0.2)
        assert r.status_code == 200 and 'id="login-form"' in r.text
        assert r.headers["x-frame-options"] == "DENY" and "server" not in r.headers
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True) as client:
            signed = client.post("/login", data={"username": "alice", "password": "pw-1"})
            assert signed.status_code == 200 and "alice (operator)" in signed.text  # followed to the overview
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert "web.secret is not set" in (tmp_path / "web.err").read_text(), "the random-secret warning is missing"


def test_gateway_web_refuses_to_start_without_users(tmp_path: Path) -> None:
    home = home_with(tmp_path, None)
    result = CliRunner().invoke(main, ["web", "--home", str(home.path), "--port", "0"])
    assert result.exit_code == 2 and "no web users" in result.output


def test_hash_password_prints_an_argon2_hash_of_stdin() -> None:
    result = CliRunner().invoke(main, ["web", "hash-password"], input="correct horse\n")
    assert result.exit_code == 0, result.output
    hashed = result.stdout.strip()
    assert hashed.startswith("$argon2id$") and PasswordHasher().verify(hashed, "correct horse")
    assert "correct horse" not in result.stdout


def test_a_trusted_proxy_header_names_the_user_and_the_role_comes_from_the_config(tmp_path: Path) -> None:
    home = home_with(tmp_path, {"trusted_header": "X-Remote-User", "users": [{"name": "pat", "role": "viewer"}]})
    with TestClient(create_app(home.path, secret="s" * 40)) as client:
        page = client.get("/", headers={"X-Remote-User": "pat"})
        assert page.status_code == 200 and '<span id="whoami">pat (viewer)</span>' in page.text
        assert client.get("/actions/retransmit/1", headers={"X-Remote-User": "pat"}).status_code == 403
        stranger = client.get("/", headers={"X-Remote-User": "mallory"})
        assert stranger.status_code == 403 and "mallory" in stranger.text
        refused = client.post("/login", data={"username": "pat", "password": ""}, follow_redirects=False)
        assert refused.status_code == 401, "a user without a password hash signed in with an empty password"


@pytest.mark.parametrize(
    ("web", "words"),
    [
        ({"users": [{"name": "a", "role": "boss"}]}, "role"),
        ({"users": [{"name": "a", "password_hash": "plain-text"}]}, "password_hash"),
        ({"users": [{"name": "a"}, {"name": "a"}]}, "listed twice"),
        ({"userz": []}, "userz"),
        ({"secret": {"env": "GATEWAY_TEST_UNSET_WEB_SECRET"}}, "GATEWAY_TEST_UNSET_WEB_SECRET is not set"),
    ],
)
def test_config_lint_reports_a_wrong_web_section(tmp_path: Path, web: dict, words: str) -> None:
    home = make_home(tmp_path / "home", "sqlite:///var/gateway.db", extra={"web": web})
    lint = gateway(home, "config", "lint")
    assert lint.returncode == 2 and words in lint.stdout + lint.stderr, lint.stdout + lint.stderr


def test_web_secret_from_the_environment_signs_sessions_that_outlive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_TEST_WEB_SECRET", "k" * 48)
    user = {"name": "alice", "role": "operator", "password_hash": hash_password("pw-2")}
    home = home_with(tmp_path, {"secret": {"env": "GATEWAY_TEST_WEB_SECRET"}, "users": [user]})
    with TestClient(create_app(home.path)) as first:
        first.post("/login", data={"username": "alice", "password": "pw-2"})
        cookie = first.cookies["gateway_session"]
    with TestClient(create_app(home.path), cookies={"gateway_session": cookie}) as restarted:
        assert restarted.get("/", follow_redirects=False).status_code == 200, "the session did not survive"
    monkeypatch.setenv("GATEWAY_TEST_WEB_SECRET", "other" * 10)
    with TestClient(create_app(home.path), cookies={"gateway_session": cookie}) as rekeyed:
        assert rekeyed.get("/", follow_redirects=False).status_code == 303, "a cookie signed with another key let in"


def test_an_unset_web_secret_stops_the_dashboard_not_the_processing_service(tmp_path: Path) -> None:
    """``web.secret`` is the dashboard's cookie key: `config lint` names it unset (CFG-014) and `gateway web`
    needs it, but `gateway run` (which never signs a cookie) still processes files without it."""
    home = home_with(tmp_path, {"secret": {"env": "GATEWAY_TEST_UNSET_WEB_SECRET"}})
    linted = gateway(home, "config", "lint")
    assert linted.returncode != 0 and "CFG-014" in linted.stdout + linted.stderr
    ran = gateway(home, "run", "--once")
    assert ran.returncode == 0, ran.stderr
    assert "CFG-014" not in ran.stderr
