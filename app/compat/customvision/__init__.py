"""Azure Custom Vision compatibility: projects, tags, images, iterations, publishing,
prediction, exports and per-image performance on Crowdlab's collections and models, with the
routes under ``/customvision`` (what no route serves answers in Azure's shape, ``fallback``).

Owns only translation: collections, training runs and inference live in ``app.services.ml``."""
