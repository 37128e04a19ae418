"""Azure Custom Vision compatibility: projects, tags, images, iterations, publishing and
prediction on Crowdlab's collections and models, with the routes under ``/customvision``.

Owns only translation: collections, training runs and inference live in ``app.services.ml``."""
