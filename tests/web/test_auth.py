"""Sign-up, log-in, CSRF, roles and object visibility in the web console."""

from __future__ import annotations

from sqlmodel import select

from app.db.models import Role, User
from app.security import verify_password
from tests.builders.users import PASSWORD, csrf_of, login, make_requester


def test_requester_signs_up_and_sees_empty_console(client, session):
    token = csrf_of(client, "/signup/requester")
    response = client.post(
        "/signup/requester",
        data={
            "email": "Ann@Example.com",
            "password": "long enough pw",
            "name": "Ann",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert "Projects" in response.text and "No projects yet" in response.text
    user = session.exec(select(User).where(User.email == "ann@example.com")).one()
    assert user.role == Role.REQUESTER
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, "long enough pw")


def test_labeler_signs_up_and_sees_available_work(client, session):
    token = csrf_of(client, "/signup/labeler")
    response = client.post(
        "/signup/labeler",
        data={
            "email": "lab@example.com",
            "password": "long enough pw",
            "languages": "en, de",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert "Available work" in response.text
    user = session.exec(select(User).where(User.email == "lab@example.com")).one()
    assert user.role == Role.LABELER and user.languages == ["EN", "DE"]


def test_signup_form_shows_errors_and_keeps_values(client):
    token = csrf_of(client, "/signup/requester")
    response = client.post(
        "/signup/requester",
        data={"email": "not-an-email", "password": "short", "csrf_token": token},
    )
    assert response.status_code == 422
    assert "Enter a valid email address." in response.text
    assert "Use at least 10 characters." in response.text
    assert 'value="not-an-email"' in response.text


def test_duplicate_email_is_refused_without_saying_it_is_registered(client, session):
    make_requester(session, email="dup@example.com")
    token = csrf_of(client, "/signup/labeler")
    response = client.post(
        "/signup/labeler",
        data={"email": "dup@example.com", "password": "long enough pw", "csrf_token": token},
    )
    assert response.status_code == 422
    assert "could not create an account" in response.text
    assert "registered" not in response.text.lower()


def test_login_with_wrong_password_is_refused(client, session):
    user = make_requester(session)
    token = csrf_of(client)
    response = client.post(
        "/login", data={"email": user.email, "password": "wrong password", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "Wrong email or password." in response.text
    assert client.get("/requester", follow_redirects=False).status_code == 303


def test_login_then_logout(client, session):
    user = make_requester(session)
    login(client, user)
    assert client.get("/requester").status_code == 200
    client.post("/logout")
    response = client.get("/requester", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_form_post_without_csrf_token_is_forbidden(client, session):
    user = make_requester(session)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 403
    assert "form expired" in response.text


def test_form_post_with_wrong_csrf_token_is_forbidden(client, session):
    user = make_requester(session)
    login(client, user)
    client.headers.pop("X-CSRF-Token")
    response = client.post("/account/tokens", data={"name": "x", "csrf_token": "forged"})
    assert response.status_code == 403


def test_labeler_cannot_open_requester_pages(labeler_client):
    response = labeler_client.get("/requester")
    assert response.status_code == 403
    assert "not available to your account type" in response.text


def test_requester_cannot_open_labeler_pages(requester_client):
    assert requester_client.get("/labeler").status_code == 403


def test_open_redirect_after_login_is_ignored(client, session):
    user = make_requester(session)
    token = csrf_of(client)
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "https://evil.example",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/requester"


def test_unknown_page_renders_friendly_html_error(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in response.text
