"""firestore.rules for user styles (issue 16): a style and its references are readable by
the style's owner only, and no client writes either. Seed data is written as admin."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

ALICE, BOB = "alice-uid", "bob-uid"
UserClient = Callable[[str | None], httpx.Client]


@pytest.fixture
def style(admin: httpx.Client) -> tuple[str, str]:
    """Alice's style with one reference: their document paths."""
    style = f"/styles/u-{uuid.uuid4().hex[:20]}"
    reference = f"{style}/references/{'a' * 64}"
    fields = {"owner_uid": {"stringValue": ALICE}, "name": {"stringValue": "team ink"}}
    assert admin.patch(style, json={"fields": fields}).is_success
    tags = {"arrayValue": {"values": [{"stringValue": "golf"}]}}
    assert admin.patch(reference, json={"fields": {"tags": tags}}).is_success
    return style, reference


def test_the_owner_reads_their_style_and_references(
    as_user: UserClient, style: tuple[str, str]
) -> None:
    for path in style:
        response = as_user(ALICE).get(path)
        assert response.status_code == 200, response.text
    listing = as_user(ALICE).get(f"{style[0]}/references")
    assert listing.status_code == 200 and len(listing.json()["documents"]) == 1


@pytest.mark.parametrize("uid", [BOB, None], ids=["other-user", "anonymous"])
def test_nobody_else_reads_them(
    as_user: UserClient, style: tuple[str, str], uid: str | None
) -> None:
    for path in style:
        assert as_user(uid).get(path).status_code == 403
    assert as_user(uid).get(f"{style[0]}/references").status_code == 403


@pytest.mark.parametrize("uid", [ALICE, BOB, None], ids=["owner", "other-user", "anonymous"])
def test_no_client_writes_a_style_or_reference(
    as_user: UserClient, admin: httpx.Client, style: tuple[str, str], uid: str | None
) -> None:
    client = as_user(uid)
    renamed = {"fields": {"owner_uid": {"stringValue": ALICE}, "name": {"stringValue": "x"}}}
    assert client.patch(style[0], json=renamed).status_code == 403
    assert client.delete(style[1]).status_code == 403
    new = f"/styles/u-{uuid.uuid4().hex[:20]}"
    assert client.patch(new, json=renamed).status_code == 403
    assert client.patch(f"{style[0]}/references/{'b' * 64}", json={"fields": {}}).status_code == 403
    assert admin.get(style[0]).json()["fields"]["name"]["stringValue"] == "team ink"
    assert admin.get(style[1]).status_code == 200
    assert admin.get(new).status_code == 404
