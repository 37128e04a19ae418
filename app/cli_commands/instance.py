"""What every command that touches the database does first, and the local default owner.

``CROWDLAB_DATA_DIR=/new/dir crowdlab collection import x.zip --name n`` works as written:
the data directory is made, the database migrated, and on an instance with no requester
yet the commands act for a local requester made on the spot (its password is printed
once, so the same person can log in to ``crowdlab serve`` and see what the commands made).
"""

from __future__ import annotations

import secrets
import sys

from app.errors import CrowdlabError

LOCAL_OWNER_EMAIL = "owner@crowdlab.localhost"


def prepare_instance() -> None:
    """Create the data directory and bring the database to the newest schema."""
    from app.db.migrate import upgrade
    from app.settings import get_settings

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade()


def resolve_owner(session, email: str | None):
    """The requester named by ``--owner``, else the only requester, else a new local one.

    Raises:
        CrowdlabError: ``--owner`` names nobody, or several requesters make it ambiguous.
    """
    from sqlmodel import select

    from app.db.models import Role, User

    if email:
        user = session.exec(select(User).where(User.email == email.strip().lower())).first()
        if user is None or user.role not in (Role.REQUESTER, Role.ADMIN):
            raise CrowdlabError(f"No requester with the email {email!r}.")
        return user
    users = session.exec(
        select(User).where(User.role.in_((Role.REQUESTER, Role.ADMIN)), User.is_active)
    ).all()
    if len(users) == 1:
        return users[0]
    if users:
        raise CrowdlabError(f"Pass --owner EMAIL: there are {len(users)} requesters.")
    return _create_local_owner(session)


def _create_local_owner(session):
    from app.services.accounts.users import create_user

    password = secrets.token_urlsafe(15)
    user = create_user(
        session,
        email=LOCAL_OWNER_EMAIL,
        password=password,
        role="requester",
        name="Local owner",
    )
    print(
        f"No requester yet: created {LOCAL_OWNER_EMAIL} to own what the commands make. "
        f"To see it in the web app (crowdlab serve), log in with that e-mail and the "
        f"password {password} (shown once).",
        file=sys.stderr,
    )
    return user
