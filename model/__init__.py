"""Pure training, evaluation and inference over image files and labels (no web, no database).

Import the submodules you need; ``model.config`` is cheap (no torch), the others load torch
and timm:

* ``model.config.TrainConfig`` - training settings, saved as JSON beside each checkpoint.
* ``model.factory.build_model`` / ``ARCHITECTURES`` - timm architectures, offline weights;
  ``load_checkpoint`` rebuilds a saved model.
* ``model.data`` - ``build_transform``, ``ImageListDataset``, ``load_image``, ``BadImageError``.
* ``model.train.train`` - the training loop (``torchrun`` DDP aware) -> ``TrainResult``.
* ``model.evaluate.evaluate`` and ``model.metrics.compute_metrics`` - figures.
* ``model.checkpoint`` - atomic checkpoint directories; ``model.predict.Predictor``.
"""
