"""Azure Custom Vision concepts on Crowdlab's tables: projects, domains, tags and their ids.

A Custom Vision project is a Crowdlab collection (``source="customvision"``; any of the
requester's collections shows up as a project), its tags are the collection's classes, its
images are collection items (``label`` None = untagged), its iterations are trained models.
Ids on the wire are UUIDs: projects, images and iterations derive theirs from the row id
(uuid5), tags keep a name → uuid map in ``Collection.extra["tags"]``.

Errors are ``CustomVisionError`` with Azure's error codes; the HTTP edge renders them as
``{"code", "message"}``.
"""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy import func, update
from sqlmodel import Session, select

from app.db.engine import is_sqlite
from app.db.models import Collection, CollectionItem, User
from app.errors import CrowdlabError
from app.services.ml.collections import delete_collection, list_collections
from app.services.ml.multilabel import is_multilabel, item_tags, set_item_tags
from app.services.ml.multilabel import tag_counts as multilabel_tag_counts
from app.services.text import control_problem

NAMESPACE = uuid.UUID("6f1c3a52-4d7e-4b8a-9c21-5e0f7a9b3d11")
SOURCE = "customvision"
CLASSIFICATION_TYPES = ("Multiclass", "Multilabel")
TAG_TYPES = ("Regular", "Negative", "GeneralProduct")

# Azure's own domain ids, so scripts with hard-coded ids keep working. Crowdlab trains
# image classifiers; the object-detection domains are listed as not enabled.
DOMAINS = [
    ("ee85a74c-405e-4adc-bb47-ffa8ca0c9f31", "General", "Classification", False),
    ("c151d5b5-dd07-472a-acc8-15d29dea8518", "Food", "Classification", False),
    ("ca455789-012d-4b50-9fec-5bb63841c793", "Landmarks", "Classification", False),
    ("b30a91ae-e3c1-4f73-a81e-c270bff27c39", "Retail", "Classification", False),
    ("0732100f-1a38-4e49-a514-c9b44c697ab5", "General (compact)", "Classification", True),
    ("8882951b-82cd-4c32-970b-d5f8cb8bf6d7", "Food (compact)", "Classification", True),
    ("b5cfd229-2ac7-4b2b-8d0a-2b0661344894", "Landmarks (compact)", "Classification", True),
    ("6b4faeda-8396-481b-9f8b-177b9fa3097f", "Retail (compact)", "Classification", True),
    ("da2e3a8a-40a5-4171-82f4-58522f70fbc1", "General", "ObjectDetection", False),
    ("1d8ffafe-ec40-4fb2-8f90-72b3b6cecea4", "Logo", "ObjectDetection", False),
    ("a27d5ca5-bb19-49d8-a70a-fec086c47f5b", "General (compact)", "ObjectDetection", True),
]
GENERAL_DOMAIN = DOMAINS[0][0]
# What Crowdlab really exports (model/export.py); compact domains offer it, as in Azure.
EXPORT_PLATFORMS = ("ONNX",)


class CustomVisionError(CrowdlabError):
    """An error with a Custom Vision error code (``BadRequestTagNameNotUnique``, ...)."""

    def __init__(self, code: str, message: str, *, status_code: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status_code = status_code


def not_found(what: str, value: object) -> CustomVisionError:
    """A 404 with Azure's ``NotFound<What>`` code."""
    return CustomVisionError(f"NotFound{what}", f"{what} {value} not found.", status_code=404)


# ----------------------------------------------------------------------------- ids


def project_uuid(collection_id: int) -> str:
    """The stable project id of a collection."""
    return str(uuid.uuid5(NAMESPACE, f"collection:{collection_id}"))


def image_uuid(item_id: int) -> str:
    """The stable image id of a collection item."""
    return str(uuid.uuid5(NAMESPACE, f"item:{item_id}"))


def iteration_uuid(model_id: int) -> str:
    """The stable iteration id of a trained model."""
    return str(uuid.uuid5(NAMESPACE, f"model:{model_id}"))


def parse_uuid(value: str, what: str = "id") -> str:
    """A canonical lower-case UUID string, or a ``BadRequestInvalidIds`` error."""
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise CustomVisionError(
            "BadRequestInvalidIds", f"{what} {value!r} is not a valid GUID."
        ) from None


def tag_map(collection: Collection) -> dict[str, str]:
    """``{tag name: tag id}`` for every class of the collection (ids stable per name)."""
    stored = (collection.extra or {}).get("tags") or {}
    return {
        name: stored.get(name)
        or str(uuid.uuid5(NAMESPACE, f"collection:{collection.id}:tag:{name}"))
        for name in collection.classes
    }


def tag_id_for(collection: Collection, name: str) -> str:
    """The id of a tag name, also for a class no longer among the project's tags."""
    return tag_map(collection).get(name) or str(
        uuid.uuid5(NAMESPACE, f"collection:{collection.id}:tag:{name}")
    )


def tag_names_by_id(collection: Collection) -> dict[str, str]:
    """``{tag id: tag name}``."""
    return {tag_id: name for name, tag_id in tag_map(collection).items()}


def set_extra(collection: Collection, **values) -> None:
    """Replace keys of ``collection.extra`` (a new dict, so the JSON column is written)."""
    collection.extra = {**(collection.extra or {}), **values}


def bump_revision(collection: Collection) -> None:
    """Note that the training data changed (``train_project`` compares revisions)."""
    set_extra(collection, revision=int((collection.extra or {}).get("revision", 0)) + 1)


# ----------------------------------------------------------------------------- domains


def list_domains() -> list[dict]:
    """The domains a project can use (classification ones are enabled)."""
    return [
        {
            "id": domain_id,
            "name": name,
            "type": kind,
            "exportable": compact and kind == "Classification",
            "enabled": kind == "Classification",
            "exportablePlatforms": list(EXPORT_PLATFORMS)
            if compact and kind == "Classification"
            else [],
            "modelInformation": {
                "estimatedModelSizeInMegabytes": 45,
                "description": f"{name} {kind.lower()} domain (Crowdlab trains a timm model).",
            },
        }
        for domain_id, name, kind, compact in DOMAINS
    ]


def get_domain(domain_id: str) -> dict:
    """One domain by id (``NotFoundDomain`` otherwise)."""
    wanted = parse_uuid(domain_id, "Domain")
    for domain in list_domains():
        if domain["id"] == wanted:
            return domain
    raise not_found("Domain", domain_id)


def domain_of(collection: Collection) -> dict:
    """The domain of a project (General for collections made in Crowdlab)."""
    return get_domain((collection.extra or {}).get("domainId") or GENERAL_DOMAIN)


def _check_domain(domain: dict) -> dict:
    if domain["type"] != "Classification":
        raise CustomVisionError(
            "BadRequestProjectUnknownDomain",
            f"Domain {domain['name']} ({domain['type']}) is not supported: Crowdlab trains "
            "image classifiers; pick a Classification domain.",
        )
    return domain


def _check_export_platforms(domain: dict, platforms: list[str]) -> list[str]:
    wrong = [p for p in platforms if p not in domain["exportablePlatforms"]]
    if wrong:
        offered = ", ".join(domain["exportablePlatforms"]) or "none (pick a compact domain)"
        raise CustomVisionError(
            "BadRequestProjectUnsupportedExportPlatform",
            f"Export platform(s) {', '.join(wrong)} not supported for the {domain['name']} "
            f"domain; Crowdlab exports: {offered}.",
        )
    return list(platforms)


# ----------------------------------------------------------------------------- projects


def get_project(session: Session, *, requester: User, project_id: str) -> Collection:
    """The requester's collection whose project id is ``project_id`` (else 404)."""
    wanted = parse_uuid(project_id, "Project")
    for collection in list_collections(session, requester=requester):
        if project_uuid(collection.id) == wanted:
            return collection
    raise not_found("Project", project_id)


def lock_project(session: Session, collection: Collection) -> Collection:
    """Re-read a collection with a row lock (PostgreSQL) before changing its tags or images."""
    if is_sqlite(session.get_bind()):
        return collection  # a write session already holds SQLite's write lock
    query = select(Collection).where(Collection.id == collection.id).with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).one()


def list_projects(session: Session, *, requester: User) -> list[Collection]:
    """The requester's collections as projects, oldest first (Azure's order)."""
    return list(reversed(list_collections(session, requester=requester)))


def create_project(
    session: Session,
    *,
    requester: User,
    name: str,
    description: str | None = None,
    domain_id: str | None = None,
    classification_type: str | None = None,
    target_export_platforms: list[str] | None = None,
) -> Collection:
    """Create an empty collection for a Custom Vision classification project."""
    name = (name or "").strip()
    if not name or len(name) > 200 or control_problem(name, name=True):
        raise CustomVisionError(
            "BadRequestProjectName",
            "Give the project a name (1-200 characters, no control characters).",
        )
    domain = _check_domain(get_domain(domain_id) if domain_id else get_domain(GENERAL_DOMAIN))
    classification_type = classification_type or "Multiclass"
    if classification_type not in CLASSIFICATION_TYPES:
        raise CustomVisionError(
            "BadRequestProjectUnknownClassification",
            f"Classification type {classification_type!r} is not supported: use Multiclass "
            "(one tag per image) or Multilabel (any number of tags per image).",
        )
    platforms = _check_export_platforms(domain, list(target_export_platforms or []))
    taken = session.exec(
        select(Collection.id).where(Collection.owner_id == requester.id, Collection.name == name)
    ).first()
    if taken is not None:
        raise CustomVisionError(
            "BadRequestProjectNameNotUnique", f"You already have a project named {name!r}."
        )
    collection = Collection(
        owner_id=requester.id,
        name=name,
        description=(description or "").strip()[:2000],
        source=SOURCE,
        status="ready",
        classes=[],
        classification_type="multilabel" if classification_type == "Multilabel" else "multiclass",
        extra={
            "domainId": domain["id"],
            "classificationType": classification_type,
            "targetExportPlatforms": platforms,
            "tags": {},
            "tag_info": {},
            "image_count": 0,
            "revision": 0,
        },
    )
    session.add(collection)
    session.commit()
    return collection


def update_project(
    session: Session,
    *,
    requester: User,
    project_id: str,
    name: str | None,
    description: str | None,
    domain_id: str | None = None,
    classification_type: str | None = None,
    target_export_platforms: list[str] | None = None,
) -> Collection:
    """Rename a project, change its description, its domain or its target export platforms.

    A new domain applies to the iterations trained from then on (as in Azure, an iteration
    keeps the domain it was trained in), so ``train_project`` is needed again.
    """
    collection = lock_project(
        session, get_project(session, requester=requester, project_id=project_id)
    )
    if name is not None and control_problem(name, name=True):
        raise CustomVisionError("BadRequestProjectName", "The name has a control character.")
    if description is not None and control_problem(description):
        raise CustomVisionError("BadRequest", "The description has a control character.")
    domain = domain_of(collection)
    if domain_id is not None and parse_uuid(domain_id, "Domain") != domain["id"]:
        domain = _check_domain(get_domain(domain_id))
        set_extra(collection, domainId=domain["id"])
    current = "Multilabel" if is_multilabel(collection) else "Multiclass"
    if classification_type not in (None, current):
        if classification_type not in CLASSIFICATION_TYPES:
            raise CustomVisionError(
                "BadRequestProjectUnknownClassification",
                f"Classification type {classification_type!r} is not supported: use "
                "Multiclass or Multilabel.",
            )
        tagged = session.exec(
            select(func.count()).where(
                CollectionItem.collection_id == collection.id, CollectionItem.label.is_not(None)
            )
        ).one()
        if tagged:
            raise CustomVisionError(
                "BadRequestProjectClassificationTypeChange",
                "The classification type can change only while no image is tagged.",
            )
        collection.classification_type = (
            "multilabel" if classification_type == "Multilabel" else "multiclass"
        )
        set_extra(collection, classificationType=classification_type)
    platforms = (collection.extra or {}).get("targetExportPlatforms") or []
    if target_export_platforms is not None:
        platforms = target_export_platforms
    set_extra(collection, targetExportPlatforms=_check_export_platforms(domain, list(platforms)))
    if name is not None and name.strip() and name.strip() != collection.name:
        new = name.strip()[:200]
        clash = session.exec(
            select(Collection.id).where(Collection.owner_id == requester.id, Collection.name == new)
        ).first()
        if clash is not None:
            raise CustomVisionError(
                "BadRequestProjectNameNotUnique", f"You already have a project named {new!r}."
            )
        collection.name = new
    if description is not None:
        collection.description = description.strip()[:2000]
    session.add(collection)
    session.commit()
    return collection


def delete_project(session: Session, *, requester: User, project_id: str) -> None:
    """Delete a project: its collection, images and iterations."""
    collection = get_project(session, requester=requester, project_id=project_id)
    delete_collection(session, requester=requester, collection_id=collection.id)


# ----------------------------------------------------------------------------- tags


def tag_counts(session: Session, collection: Collection) -> Counter:
    """Images per tag name."""
    if is_multilabel(collection):
        counts = multilabel_tag_counts(session, collection)
        return Counter({name: entry["total"] for name, entry in counts.items()})
    rows = session.exec(
        select(CollectionItem.label, func.count())
        .where(CollectionItem.collection_id == collection.id, CollectionItem.label.is_not(None))
        .group_by(CollectionItem.label)
    ).all()
    return Counter(dict(rows))


def tag_view(collection: Collection, name: str, counts: Counter) -> dict:
    """A tag as the service sees it: id, name, description, type, image count."""
    info = ((collection.extra or {}).get("tag_info") or {}).get(name) or {}
    return {
        "id": tag_map(collection)[name],
        "name": name,
        "description": info.get("description"),
        "type": info.get("type") or "Regular",
        "imageCount": int(counts.get(name, 0)),
    }


def list_tags(session: Session, *, requester: User, project_id: str) -> list[dict]:
    """The project's tags with their image counts."""
    collection = get_project(session, requester=requester, project_id=project_id)
    counts = tag_counts(session, collection)
    return [tag_view(collection, name, counts) for name in collection.classes]


def _tag_name(collection: Collection, tag_id: str) -> str:
    wanted = parse_uuid(tag_id, "Tag")
    name = tag_names_by_id(collection).get(wanted)
    if name is None:
        raise not_found("Tag", tag_id)
    return name


def get_tag(session: Session, *, requester: User, project_id: str, tag_id: str) -> dict:
    """One tag of a project."""
    collection = get_project(session, requester=requester, project_id=project_id)
    name = _tag_name(collection, tag_id)
    return tag_view(collection, name, tag_counts(session, collection))


def _check_tag_name(collection: Collection, name: str, *, current: str | None = None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200 or control_problem(name, name=True):
        raise CustomVisionError(
            "BadRequestTagName", "Give the tag a name (1-200 characters, no control characters)."
        )
    if name != current and name in collection.classes:
        raise CustomVisionError(
            "BadRequestTagNameNotUnique", f"The project already has a tag named {name!r}."
        )
    return name


def _check_tag_type(tag_type: str | None) -> str:
    tag_type = tag_type or "Regular"
    if tag_type != "Regular":
        raise CustomVisionError(
            "BadRequestTagType",
            f"Tag type {tag_type!r} is not supported: Crowdlab tags are Regular classes.",
        )
    return tag_type


def create_tag(
    session: Session,
    *,
    requester: User,
    project_id: str,
    name: str,
    description: str | None = None,
    tag_type: str | None = None,
) -> dict:
    """Add a class to the project's collection; its tag id is a new UUID."""
    collection = lock_project(
        session, get_project(session, requester=requester, project_id=project_id)
    )
    name = _check_tag_name(collection, name)
    tag_type = _check_tag_type(tag_type)
    tags = dict((collection.extra or {}).get("tags") or {})
    tags[name] = str(uuid.uuid4())
    info = dict((collection.extra or {}).get("tag_info") or {})
    info[name] = {"description": description, "type": tag_type}
    collection.classes = sorted({*collection.classes, name})
    set_extra(collection, tags=tags, tag_info=info)
    bump_revision(collection)
    session.add(collection)
    session.commit()
    return tag_view(collection, name, Counter())


def update_tag(
    session: Session,
    *,
    requester: User,
    project_id: str,
    tag_id: str,
    name: str | None,
    description: str | None,
    tag_type: str | None,
) -> dict:
    """Rename a tag (its images follow) or change its description; the id stays."""
    collection = lock_project(
        session, get_project(session, requester=requester, project_id=project_id)
    )
    old = _tag_name(collection, tag_id)
    new = _check_tag_name(collection, name, current=old) if name else old
    _check_tag_type(tag_type)
    ids = tag_map(collection)
    info = dict((collection.extra or {}).get("tag_info") or {})
    entry = dict(info.pop(old, {}) or {})
    if description is not None:
        entry["description"] = description
    info[new] = entry
    if new != old and is_multilabel(collection):
        ids[new] = ids.pop(old)
        _retag(session, collection, lambda tags: [new if t == old else t for t in tags])
        collection.classes = sorted({*(c for c in collection.classes if c != old), new})
        bump_revision(collection)
    elif new != old:
        ids[new] = ids.pop(old)
        session.exec(
            update(CollectionItem)
            .where(CollectionItem.collection_id == collection.id, CollectionItem.label == old)
            .values(label=new)
        )
        collection.classes = sorted({*(c for c in collection.classes if c != old), new})
        bump_revision(collection)
    set_extra(collection, tags=ids, tag_info=info)
    session.add(collection)
    session.commit()
    return tag_view(collection, new, tag_counts(session, collection))


def _retag(session: Session, collection: Collection, change) -> None:
    """Multilabel: apply ``change`` (tags -> tags) to every tagged image; an image left
    without a tag becomes untagged."""
    items = session.exec(
        select(CollectionItem).where(
            CollectionItem.collection_id == collection.id, CollectionItem.label.is_not(None)
        )
    ).all()
    for item in items:
        tags = change(item_tags(item))
        if tags:
            set_item_tags(item, tags)
        else:
            item.label, item.labels = None, None
        session.add(item)


def delete_tag(session: Session, *, requester: User, project_id: str, tag_id: str) -> None:
    """Remove a class: its images stay in the project, untagged."""
    collection = lock_project(
        session, get_project(session, requester=requester, project_id=project_id)
    )
    name = _tag_name(collection, tag_id)
    ids = tag_map(collection)
    ids.pop(name, None)
    info = dict((collection.extra or {}).get("tag_info") or {})
    info.pop(name, None)
    if is_multilabel(collection):
        _retag(session, collection, lambda tags: [t for t in tags if t != name])
    else:
        session.exec(
            update(CollectionItem)
            .where(CollectionItem.collection_id == collection.id, CollectionItem.label == name)
            .values(label=None)
        )
    collection.classes = [c for c in collection.classes if c != name]
    set_extra(collection, tags=ids, tag_info=info)
    bump_revision(collection)
    session.add(collection)
    session.commit()
