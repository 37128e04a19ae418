"""Mounts the Azure Custom Vision compatible API (``/customvision/v3.x/...``)."""

from __future__ import annotations

from fastapi import APIRouter

from app.compat.customvision.routes import (
    exports,
    fallback,
    images,
    iterations,
    prediction,
    training,
)

router = APIRouter()
for module in (training, images, iterations, exports, prediction, fallback):
    router.include_router(module.router)

# ``fallback`` comes last: it answers what no other route serves in Azure's shape.
