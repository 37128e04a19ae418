"""Collections pages: list with class counts and thumbnails, ZIP import, from aggregation."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse

from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import UploadRejected, ValidationFailed
from app.services.ml import collection_aggregation, collections, multilabel, trained_models
from app.services.ml import lists as ml_lists
from app.web.forms import parse_int
from app.web.lists import ListView, list_params
from app.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


def parse_fraction(raw: str | None, *, field: str, default: float) -> float:
    """A number in [0, 1] from a form field (blank → ``default``)."""
    text = (raw or "").strip().replace(",", ".")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValidationFailed(
            "Enter a number like 0.8.", errors={field: "Not a number."}
        ) from None
    if not 0.0 <= value <= 1.0:
        raise ValidationFailed("Use a number between 0 and 1.", errors={field: "Between 0 and 1."})
    return value


def _list_page(request, session, user, *, errors=None, values=None, error=None, status=200):
    page = ml_lists.page_collections(
        session, requester=user, params=list_params(request, ml_lists.COLLECTION_LIST)
    )
    items = page.items
    counts = collections.class_counts(session, collection_ids=[c.id for c in items])
    for c in items:  # multilabel: images per tag (an image counts once for each of its tags)
        if multilabel.is_multilabel(c):
            counts[c.id] = multilabel.tag_counts(session, c)
    thumbs = {c.id: collections.thumbnails(session, collection=c, limit=6) for c in items}
    return render(
        request,
        "requester/collections/list.html",
        {
            "collections": ListView(
                request,
                page,
                target="collection-list",
                path=request.url_for("collections:list").path,
            ),
            "counts": counts,
            "thumbs": thumbs,
            "errors": errors or {},
            "values": values or {"val_fraction": "0.2", "seed": "0"},
            "error": error,
            "nav": "collections",
        },
        status_code=status,
    )


@router.get("/requester/collections", name="collections:list")
def collections_list(request: Request, session: SessionDep, user: CurrentRequester):
    """Every collection with its images per class and a few thumbnails."""
    return _list_page(request, session, user)


@router.post("/requester/collections/import", name="collections:import")
def collections_import(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    file: UploadFile | None = File(None),
    name: str = Form(""),
    description: str = Form(""),
    val_fraction: str = Form("0.2"),
    seed: str = Form("0"),
):
    """Create a collection from a ZIP of class folders (a job for big archives)."""
    values = {"name": name, "description": description, "val_fraction": val_fraction, "seed": seed}
    try:
        if file is None or not file.filename:
            raise ValidationFailed("Choose a ZIP file.", errors={"file": "Choose a ZIP file."})
        # a manifest (manifest.csv / manifest.json) names several tags per image: multilabel
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
            val_fraction=parse_fraction(val_fraction, field="val_fraction", default=0.2),
            seed=parse_int(seed, field="seed", minimum=0, default=0),
        )
    except ValidationFailed as exc:
        return _list_page(
            request, session, user, errors=exc.errors, values=values, error=exc.message, status=422
        )
    except UploadRejected as exc:
        errors = {"file": exc.message}
        return _list_page(
            request, session, user, errors=errors, values=values, error=exc.message, status=422
        )
    if collection.status == "importing":
        flash(request, "The archive is large: it is being imported in the background.", "info")
    else:
        flash(request, f"Imported {collection.extra.get('image_count', 0)} images.", "success")
    url = request.url_for("collections:detail", collection_id=collection.id)
    return RedirectResponse(str(url), status_code=303)


def _aggregation_form(request, session, user, *, values, errors=None, error=None, status=200):
    runs = collection_aggregation.list_aggregation_runs(session, requester=user)
    return render(
        request,
        "requester/collections/from_aggregation.html",
        {"runs": runs, "values": values, "errors": errors or {}, "error": error},
        status_code=status,
    )


@router.get("/requester/collections/from-aggregation", name="collections:from_aggregation")
def from_aggregation_form(
    request: Request, session: SessionDep, user: CurrentRequester, run_id: int | None = None
):
    """Pick an aggregation run and a minimum confidence."""
    values = {"run_id": run_id, "min_confidence": "0.8", "val_fraction": "0.2", "seed": "0"}
    return _aggregation_form(request, session, user, values=values)


@router.get("/requester/collections/preview", name="collections:preview")
def from_aggregation_preview(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    run_id: int | None = None,
    min_confidence: str = "0.8",
    include_control: str | None = None,
):
    """Images per class that pass the threshold (an HTMX partial)."""
    preview, error = None, None
    if run_id is not None:
        try:
            confidence = parse_fraction(min_confidence, field="min_confidence", default=0.8)
            if multilabel.is_multilabel_run(session, requester=user, run_id=run_id):
                preview = multilabel.preview_multilabel_collection(
                    session, requester=user, run_id=run_id, min_confidence=confidence
                )
            else:
                preview = collection_aggregation.preview_aggregation_collection(
                    session,
                    requester=user,
                    run_id=run_id,
                    min_confidence=confidence,
                    include_control=bool(include_control),
                )
        except ValidationFailed as exc:
            error = exc.message
    return render(
        request,
        "requester/collections/_preview.html",
        {"preview": preview, "error": error},
    )


@router.post("/requester/collections/from-aggregation", name="collections:create_from_aggregation")
def from_aggregation_create(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    run_id: str = Form(""),
    name: str = Form(""),
    description: str = Form(""),
    min_confidence: str = Form("0.8"),
    include_control: str | None = Form(None),
    val_fraction: str = Form("0.2"),
    seed: str = Form("0"),
):
    """Create the collection of confident labels (and control tasks when asked)."""
    values = {
        "run_id": int(run_id) if run_id.isdigit() else None,
        "name": name,
        "description": description,
        "min_confidence": min_confidence,
        "include_control": bool(include_control),
        "val_fraction": val_fraction,
        "seed": seed,
    }
    try:
        if values["run_id"] is None:
            raise ValidationFailed("Pick an aggregation run.", errors={"run_id": "Required."})
        if multilabel.is_multilabel_run(session, requester=user, run_id=values["run_id"]):
            # several answers: an image is kept when every option is decided at this confidence
            collection = multilabel.create_multilabel_collection_from_aggregation(
                session,
                requester=user,
                run_id=values["run_id"],
                name=name,
                description=description,
                min_confidence=parse_fraction(min_confidence, field="min_confidence", default=0.8),
                val_fraction=parse_fraction(val_fraction, field="val_fraction", default=0.2),
                seed=parse_int(seed, field="seed", minimum=0, default=0),
            )
            flash(request, f"Created the multilabel collection {collection.name!r}.", "success")
            url = request.url_for("collections:detail", collection_id=collection.id)
            return RedirectResponse(str(url), status_code=303)
        collection = collection_aggregation.create_collection_from_aggregation(
            session,
            requester=user,
            run_id=values["run_id"],
            name=name,
            description=description,
            min_confidence=parse_fraction(min_confidence, field="min_confidence", default=0.8),
            include_control=bool(include_control),
            val_fraction=parse_fraction(val_fraction, field="val_fraction", default=0.2),
            seed=parse_int(seed, field="seed", minimum=0, default=0),
        )
    except ValidationFailed as exc:
        return _aggregation_form(
            request,
            session,
            user,
            values=values,
            errors=exc.errors,
            error=exc.message,
            status=422,
        )
    flash(request, f"Created {collection.name!r} from the aggregation.", "success")
    url = request.url_for("collections:detail", collection_id=collection.id)
    return RedirectResponse(str(url), status_code=303)


@router.get("/requester/collections/{collection_id}", name="collections:detail")
def collection_detail(
    request: Request, session: SessionDep, user: CurrentRequester, collection_id: int
):
    """Classes with their counts and thumbnails, the split, and the models trained on it."""
    collection = collections.get_collection(session, requester=user, collection_id=collection_id)
    counts = (
        multilabel.tag_counts(session, collection)
        if multilabel.is_multilabel(collection)
        else collections.class_counts(session, collection_ids=[collection.id])[collection.id]
    )
    job = None
    if collection.job_id:
        from app.services.jobs.records import get_job

        job = get_job(session, owner=user, job_id=collection.job_id)
    return render(
        request,
        "requester/collections/detail.html",
        {
            "collection": collection,
            "counts": counts,
            "thumbs": collections.thumbnails(session, collection=collection, per_class=8),
            "models": trained_models.list_models(
                session, requester=user, collection_id=collection.id
            ),
            "job": job,
        },
    )


@router.post("/requester/collections/{collection_id}/delete", name="collections:delete")
def collection_delete(
    request: Request, session: SessionDep, user: CurrentRequester, collection_id: int
):
    """Delete a collection with its items and models."""
    collections.delete_collection(session, requester=user, collection_id=collection_id)
    flash(request, "Collection deleted.", "success")
    return RedirectResponse(str(request.url_for("collections:list")), status_code=303)
