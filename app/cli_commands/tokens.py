"""``crowdlab token create|list|revoke``: API tokens for scripts (toloka-kit, the SDKs)."""

from __future__ import annotations

import argparse
import sys

from app.errors import CrowdlabError


def _user(session, email: str):
    from sqlmodel import select

    from app.db.models import User

    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None or not user.is_active:
        raise CrowdlabError(f"No active account with the email {email!r}.")
    return user


def _fail(exc: CrowdlabError) -> int:
    print(f"error: {exc.message}", file=sys.stderr)
    return 2


def _create(args: argparse.Namespace) -> int:
    from app.db.engine import session_scope
    from app.services.accounts.users import create_api_token

    with session_scope() as session:
        try:
            user = _user(session, args.email)
            token, plain = create_api_token(session, user=user, name=args.name)
        except CrowdlabError as exc:
            return _fail(exc)
        print(f"Token {token.name!r} (id {token.id}) for {user.email}:", file=sys.stderr)
    print(plain)  # alone on stdout: TOKEN=$(crowdlab token create ...)
    return 0


def _list(args: argparse.Namespace) -> int:
    from app.db.engine import session_scope
    from app.services.accounts.users import list_api_tokens

    with session_scope(write=False) as session:
        try:
            user = _user(session, args.email)
        except CrowdlabError as exc:
            return _fail(exc)
        for token in list_api_tokens(session, user=user):
            state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
            used = f"last used {token.last_used_at:%Y-%m-%d}" if token.last_used_at else "unused"
            print(f"{token.id}\t{token.name}\t{token.prefix}…\t{state}\t{used}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from app.db.engine import session_scope
    from app.services.accounts.users import revoke_api_token

    with session_scope() as session:
        try:
            user = _user(session, args.email)
            token = revoke_api_token(session, user=user, token_id=args.id)
        except CrowdlabError as exc:
            return _fail(exc)
        print(f"Revoked token {token.id} ({token.name}) of {user.email}")
    return 0


def register(sub) -> None:
    """Add the token sub-commands."""
    token = sub.add_parser("token", help="API tokens (for toloka-kit, the Custom Vision SDK)")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser("create", help="create a token and print it (shown once)")
    create.add_argument("--email", required=True, help="the account the token acts as")
    create.add_argument("--name", required=True, help="what the token is for")
    create.set_defaults(func=_create)
    listing = token_sub.add_parser("list", help="an account's tokens")
    listing.add_argument("--email", required=True)
    listing.set_defaults(func=_list)
    revoke = token_sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("--email", required=True)
    revoke.add_argument("--id", type=int, required=True)
    revoke.set_defaults(func=_revoke)
