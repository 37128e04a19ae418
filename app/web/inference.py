"""Inference page: pick a model, upload images, see the top class and top-k bars."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import ValidationFailed
from app.services.ml import inference, trained_models
from app.settings import get_settings
from app.web.templating import render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

MAX_FILES = 20


def _context(session, user, *, model_id=None) -> dict:
    published = trained_models.list_published_models(session, requester=user)
    completed = [
        m
        for m in trained_models.list_models(session, requester=user)
        if m.status == "completed" and m.published_name is None
    ]
    return {
        "published": published,
        "completed": completed,
        "model_id": model_id or (published[0].id if published else None),
        "results": None,
        "errors": {},
    }


def _page(request, session, user, *, model_id=None, errors=None, status=200):
    context = {**_context(session, user, model_id=model_id), "errors": errors or {}}
    return render(request, "requester/inference/page.html", context, status_code=status)


@router.get("/requester/inference", name="inference:page")
def inference_page(
    request: Request, session: SessionDep, user: CurrentRequester, model_id: int | None = None
):
    """Pick a published model and upload images."""
    return _page(request, session, user, model_id=model_id)


@router.post("/requester/inference", name="inference:predict")
async def inference_predict(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    model_id: str = Form(""),
    files: list[UploadFile] = File(default_factory=list),
):
    """Classify each uploaded image; bad files get their own error, the rest still show."""
    chosen = int(model_id) if model_id.isdigit() else None
    uploads = [f for f in files if f.filename]
    try:
        if chosen is None:
            raise ValidationFailed("Pick a model.", errors={"model_id": "Pick a model."})
        if len(uploads) > MAX_FILES:
            raise ValidationFailed(
                f"Upload at most {MAX_FILES} images at once.", errors={"files": "Too many."}
            )
        limit = get_settings().max_image_bytes
        payload = [(f.filename, await f.read(limit + 1)) for f in uploads]
        results = inference.predict_images(
            session, requester=user, model_id=chosen, files=payload, top_k=5
        )
    except ValidationFailed as exc:
        return _page(request, session, user, model_id=chosen, errors=exc.errors, status=422)
    for row in results:
        data = row.pop("data", None)
        if data is not None and len(data) <= 2_000_000:
            encoded = base64.b64encode(data).decode()
            row["preview"] = f"data:{row['content_type']};base64,{encoded}"
    context = {**_context(session, user, model_id=chosen), "results": results}
    return render(request, "requester/inference/page.html", context)
