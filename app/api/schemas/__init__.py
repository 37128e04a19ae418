"""API payload models, one module per noun."""
