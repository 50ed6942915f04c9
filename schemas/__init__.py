"""Contracts of the bus: pydantic v2 models and the declarative flow definitions."""
