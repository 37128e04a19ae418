"""API tokens: shown once, accepted as OAuth/Bearer, revocable."""

from __future__ import annotations

import re

from sqlmodel import select

from app.db.models import ApiToken


def _create_token(requester_client, name="script") -> str:
    page = requester_client.post("/account/tokens", data={"name": name}).text
    match = re.search(r'<code class="token" id="new-token">([^<]+)</code>', page)
    assert match, "the new token is shown on the account page"
    return match.group(1)


def test_token_is_shown_once_and_stored_hashed(requester_client, session):
    plain = _create_token(requester_client)
    assert plain not in requester_client.get("/account").text
    stored = session.exec(select(ApiToken)).one()
    assert stored.token_hash != plain and plain not in stored.token_hash


def test_api_accepts_oauth_and_bearer(requester_client, requester, client):
    plain = _create_token(requester_client)
    for scheme in ("OAuth", "Bearer"):
        response = client.get("/api/v1/me", headers={"Authorization": f"{scheme} {plain}"})
        assert response.status_code == 200
        assert response.json()["email"] == requester.email


def test_missing_or_bad_token_is_401_in_json(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_ERROR"
    assert client.get("/api/v1/me", headers={"Authorization": "OAuth nope"}).status_code == 401


def test_revoked_token_is_refused(requester_client, client, session):
    plain = _create_token(requester_client)
    token_id = session.exec(select(ApiToken.id)).one()
    response = requester_client.post(f"/account/tokens/{token_id}/revoke")
    assert response.status_code == 200 and "Token revoked." in response.text
    assert client.get("/api/v1/me", headers={"Authorization": f"OAuth {plain}"}).status_code == 401


def test_cannot_revoke_someone_elses_token(requester_client, make_client, session):
    from tests.builders.users import login, make_requester

    _create_token(requester_client)
    token_id = session.exec(select(ApiToken.id)).one()
    other = login(make_client(), make_requester(session))
    assert other.post(f"/account/tokens/{token_id}/revoke").status_code == 404


def test_tokens_api_creates_lists_and_revokes_the_callers_own_tokens(client, session):
    from tests.builders.users import make_requester, make_token

    owner = make_requester(session)
    auth = {"Authorization": f"OAuth {make_token(session, owner, name='first')}"}
    created = client.post("/api/v1/me/tokens", json={"name": "ci"}, headers=auth)
    assert created.status_code == 201
    new = created.json()
    assert new["name"] == "ci" and new["token"].startswith(new["prefix"])
    second = {"Authorization": f"OAuth {new['token']}"}
    assert client.get("/api/v1/me", headers=second).status_code == 200

    listed = client.get("/api/v1/me/tokens", headers=auth).json()
    assert [t["name"] for t in listed] == ["ci", "first"]
    assert all("token" not in t for t in listed)

    other = {"Authorization": f"OAuth {make_token(session, make_requester(session))}"}
    assert client.delete(f"/api/v1/me/tokens/{new['id']}", headers=other).status_code == 404
    assert client.delete(f"/api/v1/me/tokens/{new['id']}", headers=auth).status_code == 204
    assert client.get("/api/v1/me", headers=second).status_code == 401
    assert client.delete(f"/api/v1/me/tokens/{new['id']}", headers=auth).status_code == 409
    blank = client.post("/api/v1/me/tokens", json={"name": " "}, headers=auth)
    assert blank.status_code == 422
