"""``crowdlab create-user --languages`` and ``crowdlab token create|list|revoke``."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.cli import main
from app.db.models import User

PASSWORD = "correct horse battery staple"


def _user(session, email):
    session.expire_all()
    return session.exec(select(User).where(User.email == email)).one()


def test_create_user_gives_labelers_the_default_languages(session, capsys, monkeypatch):
    from app.settings import get_settings

    args = ["create-user", "--role", "labeler", "--password", PASSWORD, "--email"]
    assert main([*args, "ann@example.com"]) == 0
    assert "languages EN" in capsys.readouterr().out
    assert _user(session, "ann@example.com").languages == ["EN"]

    assert main([*args, "bob@example.com", "--languages", "en, fr"]) == 0
    assert _user(session, "bob@example.com").languages == ["EN", "FR"]

    monkeypatch.setenv("CROWDLAB_DEFAULT_LANGUAGES", "DE,EN")
    get_settings.cache_clear()
    assert main([*args, "cyd@example.com"]) == 0
    assert _user(session, "cyd@example.com").languages == ["DE", "EN"]

    requester = ["create-user", "--role", "requester", "--password", PASSWORD]
    assert main([*requester, "--email", "req@example.com"]) == 0
    assert _user(session, "req@example.com").languages == []


def test_token_create_prints_a_working_token_that_can_be_revoked(client, session, capsys):
    create = ["create-user", "--role", "requester", "--password", PASSWORD]
    assert main([*create, "--email", "dev@example.com"]) == 0
    capsys.readouterr()

    assert main(["token", "create", "--email", "dev@example.com", "--name", "toloka-kit"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert "\n" not in token and len(token) > 20  # only the token on stdout
    assert "'toloka-kit'" in out.err
    me = client.get("/api/v1/me", headers={"Authorization": f"OAuth {token}"})
    assert me.status_code == 200 and me.json()["email"] == "dev@example.com"

    assert main(["token", "list", "--email", "dev@example.com"]) == 0
    token_id, name, prefix, state, _ = capsys.readouterr().out.splitlines()[0].split("\t")
    assert (name, state) == ("toloka-kit", "active") and token.startswith(prefix.rstrip("…"))
    assert main(["token", "revoke", "--email", "dev@example.com", "--id", token_id]) == 0
    assert client.get("/api/v1/me", headers={"Authorization": f"OAuth {token}"}).status_code == 401


@pytest.mark.parametrize(
    "argv, message",
    [
        (["token", "create", "--email", "nobody@example.com", "--name", "x"], "No active account"),
        (["token", "revoke", "--email", "nobody@example.com", "--id", "1"], "No active account"),
    ],
)
def test_token_errors_are_clear(session, capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
