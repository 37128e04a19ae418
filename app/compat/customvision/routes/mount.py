"""Mounts the Azure Custom Vision compatible API (``/customvision/v3.x/...``)."""

from __future__ import annotations

from fastapi import APIRouter

from app.compat.customvision.routes import images, iterations, prediction, training

router = APIRouter()
for module in (training, images, iterations, prediction):
    router.include_router(module.router)
