"""Connectors: one sub-package per external system (client + simulator side by side)."""
