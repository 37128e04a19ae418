"""Sessions end on the server, passwords can be changed and must be strong, log-in is
throttled and takes equal time for any e-mail, and every response has security headers."""

from __future__ import annotations

import argon2
import pytest
from fastapi.testclient import TestClient

from tests.builders.users import PASSWORD, csrf_of, login, make_token

NEW_PASSWORD = "a much better passphrase"


def _copy_cookie(source: TestClient, target: TestClient) -> TestClient:
    target.cookies.set("crowdlab_session", source.cookies["crowdlab_session"])
    return target


def _try_login(client: TestClient, email: str, password: str):
    token = csrf_of(client)
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def test_copied_cookie_stops_working_after_logout(make_client, requester):
    browser = login(make_client(), requester)
    thief = _copy_cookie(browser, make_client())
    assert thief.get("/requester", follow_redirects=False).status_code == 200
    assert browser.post("/logout", follow_redirects=False).status_code == 303
    assert thief.get("/requester", follow_redirects=False).status_code == 303


def test_password_change_checks_and_logs_out_other_browsers(make_client, requester):
    browser = login(make_client(), requester)
    other = login(make_client(), requester)
    form = {
        "current_password": "not it",
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
    }
    wrong = browser.post("/account/password", data=form)
    assert wrong.status_code == 422 and "not your current password" in wrong.text
    weak = browser.post(
        "/account/password",
        data={
            **form,
            "current_password": PASSWORD,
            "new_password": "password",
            "confirm_password": "password",
        },
    )
    assert weak.status_code == 422 and "at least 10 characters" in weak.text
    differ = browser.post(
        "/account/password",
        data={**form, "current_password": PASSWORD, "confirm_password": NEW_PASSWORD + "!"},
    )
    assert differ.status_code == 422 and "differ" in differ.text
    ok = browser.post(
        "/account/password",
        data={**form, "current_password": PASSWORD},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert browser.get("/requester", follow_redirects=False).status_code == 200
    assert other.get("/requester", follow_redirects=False).status_code == 303
    assert _try_login(make_client(), requester.email, PASSWORD).status_code == 401
    assert _try_login(make_client(), requester.email, NEW_PASSWORD).status_code == 303


def test_password_change_over_the_api_ends_browser_sessions(
    make_client, session, requester, requester_api
):
    browser = login(make_client(), requester)
    weak = requester_api.post(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "12345678"}
    )
    assert weak.status_code == 422
    response = requester_api.post(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 204
    assert browser.get("/requester", follow_redirects=False).status_code == 303
    assert requester_api.get("/api/v1/me").status_code == 200  # tokens stay valid


@pytest.mark.parametrize("password", ["password", "12345678", "password1234", "qwertyuiop"])
def test_common_or_short_passwords_are_refused_at_signup(client, password):
    token = csrf_of(client, "/signup/requester")
    response = client.post(
        "/signup/requester",
        data={"email": "new@example.com", "password": password, "csrf_token": token},
    )
    assert response.status_code == 422
    assert "at least 10 characters" in response.text or "less common password" in response.text


def test_login_is_throttled_per_email_with_retry_after(make_client, requester):
    attacker = make_client()
    statuses = [_try_login(attacker, requester.email, f"guess {n}").status_code for n in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    refused = _try_login(attacker, requester.email, PASSWORD)  # even the right password
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many failed log-ins" in refused.text


def test_login_is_throttled_per_ip_across_emails(client, session):
    statuses = [
        _try_login(client, f"nobody{n}@example.com", "guess guess").status_code for n in range(52)
    ]
    assert statuses[:50] == [401] * 50 and statuses[50:] == [429, 429]


def test_unknown_email_costs_one_password_check_like_a_known_one(client, requester, monkeypatch):
    calls: list[str] = []
    real_verify = argon2.PasswordHasher.verify

    def counting_verify(self, hash_, password):
        calls.append(password)
        return real_verify(self, hash_, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting_verify)
    _try_login(client, requester.email, "wrong known")
    _try_login(client, "nobody@example.com", "wrong unknown")
    assert calls == ["wrong known", "wrong unknown"]


def test_signup_is_throttled_per_ip(client, settings):
    from app.rate_limits import AuthThrottle

    settings.signup_limit_per_ip = "2/hour"
    client.app.state.auth_throttle = AuthThrottle.from_settings(settings)
    statuses = []
    for n in range(3):
        token = csrf_of(client, "/signup/labeler")
        statuses.append(
            client.post(
                "/signup/labeler",
                data={"email": f"l{n}@example.com", "password": "short", "csrf_token": token},
            ).status_code
        )
    assert statuses == [422, 422, 429]


def test_security_headers_on_pages_and_api(client):
    for path in ("/login", "/api/v1/me"):
        headers = client.get(path).headers
        assert headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "Strict-Transport-Security" not in headers  # plain http: no HSTS


def test_hsts_only_over_https(app):
    with TestClient(app, base_url="https://testserver") as tls:
        assert "max-age=" in tls.get("/login").headers["Strict-Transport-Security"]


def test_session_cookie_secure_flag_is_a_setting(monkeypatch):
    from app.main import create_app
    from app.settings import get_settings

    for value, expected in (("false", False), ("true", True)):
        monkeypatch.setenv("CROWDLAB_COOKIE_SECURE", value)
        get_settings.cache_clear()
        with TestClient(create_app(start_jobs=False), base_url="https://testserver") as c:
            cookie = c.get("/login").headers["set-cookie"].lower()
        assert ("; secure" in cookie) is expected


def test_api_token_user_is_unaffected_by_logout(make_client, session, requester):
    api = make_client()
    api.headers["Authorization"] = f"OAuth {make_token(session, requester)}"
    browser = login(make_client(), requester)
    browser.post("/logout")
    assert api.get("/api/v1/me").status_code == 200
