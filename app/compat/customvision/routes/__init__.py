"""Azure Custom Vision compatible API (training and prediction, v3.x) over Crowdlab.

The routers are mounted by ``mount.py`` beside them.
"""
