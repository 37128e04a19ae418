"""The requester's collections and models as lists: searched, sorted and paged in SQL."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.db.models import Collection, TrainedModel, User
from app.services.listing import ListParams, ListSpec, Page, paginate

COLLECTION_LIST = ListSpec(
    sorts={
        "created": col(Collection.id),
        "name": func.lower(col(Collection.name)),
        "source": col(Collection.source),
        "status": col(Collection.status),
    },
    default_sort="created",
    default_dir="desc",
    search=(col(Collection.name), col(Collection.description)),
    tiebreak=(col(Collection.id),),
)
"""Collections, newest first; searched in name and description."""

ACCURACY = col(TrainedModel.metrics)["accuracy"].as_float()
F1 = col(TrainedModel.metrics)["macro_f1"].as_float()

MODEL_LIST = ListSpec(
    sorts={
        "created": col(TrainedModel.id),
        "collection": func.lower(col(Collection.name)),
        "arch": col(TrainedModel.arch),
        "status": col(TrainedModel.status),
        "accuracy": ACCURACY,
        "f1": F1,
        "finished": col(TrainedModel.finished_at),
    },
    default_sort="created",
    default_dir="desc",
    first_dirs={"accuracy": "desc", "f1": "desc", "finished": "desc"},
    nulls_last=("accuracy", "f1", "finished"),
    search=(
        col(Collection.name),
        col(TrainedModel.arch),
        col(TrainedModel.name),
        col(TrainedModel.published_name),
    ),
    tiebreak=(col(TrainedModel.id),),
)
"""Models (every iteration), newest first; searched in collection, architecture and names."""


def page_collections(session: Session, *, requester: User, params: ListParams) -> Page:
    """One page of the requester's collections."""
    query = select(Collection).where(Collection.owner_id == requester.id)
    return paginate(session, query, spec=COLLECTION_LIST, params=params)


def page_models(session: Session, *, requester: User, params: ListParams) -> Page:
    """One page of the requester's models as ``(model, collection or None)`` rows."""
    query = (
        select(TrainedModel, Collection)
        .outerjoin(Collection, col(Collection.id) == TrainedModel.collection_id)
        .where(TrainedModel.owner_id == requester.id)
    )
    return paginate(session, query, spec=MODEL_LIST, params=params, row=tuple)
