"""Collections over JSON: list, get, and import a ZIP of class folders."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, UploadFile

from app.api.schemas.models import CollectionPublic
from app.db.models import Collection
from app.deps import ApiRequester, SessionDep
from app.services.ml import collections, multilabel

router = APIRouter(prefix="/api/v1", tags=["collections"])


def collection_public(session, collection: Collection) -> CollectionPublic:
    """The JSON view of a collection with its image counts per class and split."""
    counts = (
        multilabel.tag_counts(session, collection)
        if multilabel.is_multilabel(collection)
        else collections.class_counts(session, collection_ids=[collection.id])[collection.id]
    )
    return CollectionPublic(**collection.model_dump(), class_counts=counts)


@router.get("/collections", response_model=list[CollectionPublic], name="api:collections_list")
def list_collections(session: SessionDep, user: ApiRequester):
    """The requester's collections, newest first."""
    return [
        collection_public(session, c) for c in collections.list_collections(session, requester=user)
    ]


@router.get(
    "/collections/{collection_id}", response_model=CollectionPublic, name="api:collections_get"
)
def get_collection(collection_id: int, session: SessionDep, user: ApiRequester):
    """One collection with its classes and split counts."""
    collection = collections.get_collection(session, requester=user, collection_id=collection_id)
    return collection_public(session, collection)


@router.post(
    "/collections",
    response_model=CollectionPublic,
    status_code=201,
    name="api:collections_import",
)
def import_collection(
    session: SessionDep,
    user: ApiRequester,
    file: UploadFile = File(...),
    name: str = Form(...),
    description: str = Form(""),
    val_fraction: float = Form(0.2),
    seed: int = Form(0),
):
    """Create a collection from a ZIP of class folders (big archives import as a job), or,
    with a ``manifest.csv`` / ``manifest.json`` naming each image's tags, a multilabel one."""
    create = (
        multilabel.create_multilabel_collection_from_zip
        if multilabel.has_manifest(file.file)
        else collections.create_collection_from_zip
    )
    collection = create(
        session,
        requester=user,
        file=file.file,
        name=name,
        description=description,
        val_fraction=val_fraction,
        seed=seed,
    )
    return collection_public(session, collection)
