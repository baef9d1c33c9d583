"""The REST destination's settings: phase one (pure validation) and phase two (build reads secrets)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO
from pydantic import ValidationError

from gateway.delivery.rest import RestDestination, classify, render_url, retry_after
from gateway.delivery.rest_config import TEMPLATE_NAMES, RestConfig
from gateway.delivery.webhooks import signature, webhook_key
from gateway.errors import ConfigError

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def config(**settings: Any) -> RestConfig:
    return RestConfig.model_validate({"type": "rest", "url": "https://ap.example/invoices/{business_key}", **settings})


def refused(**settings: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        config(**settings)
    return str(caught.value)


def test_defaults() -> None:
    c = config()
    assert (c.method, c.body, c.auth.type, c.verify, c.excerpt_bytes, c.conflict_is_delivered) == (
        "POST", "canonical", "none", True, 2000, True,
    )  # fmt: skip
    assert config(auth="none").auth.type == "none"
    assert config(method="patch").method == "PATCH"


def test_unknown_key_refused() -> None:
    assert "timeout_seconds" in refused(timeout_seconds=3)
    assert "Extra inputs are not permitted" in refused(auth={"type": "bearer", "token": {"env": "T"}, "scheme": "x"})


def test_number_is_a_template_name() -> None:
    assert config(url="https://wms.example/asn/{number}").url == "https://wms.example/asn/{number}"


def test_unknown_template_name_with_a_hint() -> None:
    message = refused(url="https://ap.example/{busines_key}")
    assert "'busines_key' (did you mean 'business_key'?)" in message
    assert "business_key" in TEMPLATE_NAMES


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://ap.example/in", "http:// or https://"),
        ("/relative/{partner}", "http:// or https://"),
        ("https://user:pw@ap.example/in", "credentials in the url"),
        ("https://ap.example/{business_key!r}", "plain name"),
        ("http://127.0.0.1:99999/ap", "url port '99999' is not a port (1-65535)"),
        ("http://127.0.0.1:0/ap", "url port '0' is not a port"),
        ("http://127.0.0.1:http/ap", "url port 'http' is not a port"),
        ("https://ap.example/{business_key:>9}", "plain name"),
        ("https://ap.example/{", "literal brace"),
    ],
)
def test_bad_urls(url: str, words: str) -> None:
    assert words in refused(url=url)


def test_a_body_is_canonical_or_a_layout_name() -> None:
    message = refused(body="ap invoice/csv")
    assert "canonical" in message and "export layout" in message


@pytest.mark.parametrize("method", ["DELETE", "GET"])
def test_methods(method: str) -> None:
    assert "POST" in refused(method=method)


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("Authorization", "secret in YAML"),
        ("Idempotency-Key", "set by the destination"),
        ("webhook-signature", "set by the destination"),
        ("bad header", "not a valid HTTP field name"),
    ],
)
def test_headers(header: str, words: str) -> None:
    assert words in refused(headers={header: "v"})


@pytest.mark.parametrize("value", ["a\r\nX-B: b", "caf\u00e9", "tab\there"])
def test_header_values_are_printable_ascii(value: str) -> None:
    assert "printable ASCII" in refused(headers={"X-A": value})


def test_basic_username_cannot_hold_a_colon() -> None:
    assert "RFC 7617" in refused(auth={"type": "basic", "username": "a:b", "password": {"env": "P"}})


def test_secret_in_yaml_is_refused() -> None:
    message = refused(auth={"type": "bearer", "token": "plain-text-token"})
    assert "auth.bearer.token" in message


def test_secret_env_not_set_is_a_config_error_at_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AP_TOKEN_UNSET", raising=False)
    c = config(auth={"type": "bearer", "token": {"env": "AP_TOKEN_UNSET"}})  # phase one passes
    assert c.problems() == ["environment variable AP_TOKEN_UNSET is not set"]
    with pytest.raises(ConfigError) as caught:
        RestDestination("ap-invoices", c)
    assert caught.value.code == "CFG-030"
    assert "'ap-invoices'" in str(caught.value) and "AP_TOKEN_UNSET is not set" in str(caught.value)


def test_hmac_secret_not_base64_is_a_config_error_without_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "whsec_not*base64!")
    c = config(auth={"type": "hmac", "secret": {"env": "HOOK_SECRET"}})
    with pytest.raises(ConfigError) as caught:
        RestDestination("ap-invoices", c)
    assert "not base64" in str(caught.value)
    assert "not*base64" not in str(caught.value)


def test_missing_ca_bundle(tmp_path: Path) -> None:
    c = config(verify=str(tmp_path / "none.pem"))
    assert c.problems() == [f"CA bundle {tmp_path / 'none.pem'} does not exist"]
    with pytest.raises(ConfigError, match="cannot load the CA bundle"):
        RestDestination("ap", c)


def test_render_url_encodes_values() -> None:
    assert render_url("https://h/{a}?b={b}", {"a": "x/y z", "b": "1&2"}) == "https://h/x%2Fy%20z?b=1%262"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Mon, 23 Nov 2026 12:00:10 GMT", 10.0),
        ("Mon, 23 Nov 2026 11:00:00 GMT", 0.0),  # in the past: now
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert retry_after(value, NOW) == seconds


def test_classify_1xx_and_6xx() -> None:
    base = {"status": 0, "headers": {}, "excerpt": ""}
    assert classify(199, base, True, NOW).outcome == "rejected"
    assert classify(599, base, True, NOW).outcome == "retry"


def test_webhook_key_with_and_without_prefix() -> None:
    raw = b"0123456789abcdef0123456789abcdef"
    text = base64.b64encode(raw).decode()
    assert webhook_key("whsec_" + text) == webhook_key(text) == raw
    with pytest.raises(ValueError, match="decodes to no bytes"):
        webhook_key("whsec_")


def test_signature_known_vector() -> None:
    # Computed independently with openssl:
    # printf 'msg_1.1700000000.{"a":1}' | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef -binary | base64
    key = b"0123456789abcdef0123456789abcdef"
    assert signature(key, "msg_1", 1700000000, b'{"a":1}') == "v1,rkwp5YuvdrMkcu0ZhuMsXoTg44mHAr1Q0+FFgFpXsjY="


def test_the_documented_example_is_a_valid_config() -> None:
    text = (REPO / "docs" / "destinations-rest.md").read_text("utf-8")
    found = re.search(r"<!-- rest-example -->\n```yaml\n(.*?)```\n<!-- /rest-example -->", text, re.S)
    assert found, "docs/destinations-rest.md lost its rest-example block"
    example = yaml.safe_load(found.group(1))["destinations"]["ap-invoices"]
    parsed = RestConfig.model_validate(example)
    assert parsed.auth.type == "hmac"
    assert set(example) == set(RestConfig.model_fields), "the example shows every key"
