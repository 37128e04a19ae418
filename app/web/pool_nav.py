"""What a pool's breadcrumbs and tab bar (templates/requester/pools/_nav.html) need."""

from __future__ import annotations

from app.db.models import Pool, User
from app.services.projects import projects


def pool_nav(session, user: User, pool: Pool, active: str) -> dict:
    """Context for the pool's breadcrumbs and tabs, ``active`` naming the current tab."""
    project = projects.get_project(session, requester=user, project_id=pool.project_id)
    return {"nav_project": project, "nav_active": active}
