"""A delivery's idempotency key (gateway.store.deliveries.idempotency_key) is uuid5 of (subject, destination)
in the gateway's namespace: receivers see the same key for the same delivery across versions."""

from __future__ import annotations

import uuid

import pytest

from gateway.store.deliveries import _NAMESPACE, idempotency_key

SUBJECTS = [
    ("3f1e0c52-7d4b-5b8e-9a37-0c5d7e2f9a11", "erp-staging"),
    ("outbound:42", "partner-outbox"),
    ("", ""),
    ("é ünïcode ✓ 𝄞", "rest/ä"),
    ("x" * 10_000, "receiver"),
]


@pytest.mark.parametrize(("subject", "destination"), SUBJECTS, ids=lambda v: v[:20])
def test_the_key_is_uuid5_of_subject_and_destination(subject: str, destination: str) -> None:
    assert idempotency_key(subject, destination) == str(uuid.uuid5(_NAMESPACE, f"{subject}\x1f{destination}"))


def test_keys_stay_as_earlier_versions_made_them() -> None:
    # Made by the version before this function was rewritten (uuid.uuid5 itself): a stored key must not move.
    assert idempotency_key("outbound:1", "partner-outbox") == "e4386806-1be2-569d-a4fa-a23a2bb4f73a"
    many = {idempotency_key(f"doc-{i}", "receiver") for i in range(2000)}
    assert len(many) == 2000
    assert all(uuid.UUID(k).version == 5 and uuid.UUID(k).variant == uuid.RFC_4122 for k in many)
