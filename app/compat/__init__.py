"""Compatibility layers: other products' wire formats over Crowdlab's services.

Each package is a leaf (nothing in the product imports it) and can be removed as a unit:
``toloka`` (Toloka API v1 as toloka-kit 1.2.3 uses it) and ``customvision`` (Azure Custom
Vision training and prediction as its Python SDK uses it)."""
