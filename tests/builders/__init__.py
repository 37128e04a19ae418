"""Builders create objects through the services, one module per noun."""
