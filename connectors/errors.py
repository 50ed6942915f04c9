"""Typed connector errors: the router retries transient ones and never permanent ones."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class of every error a connector raises."""

    retryable: bool = False

    def __init__(self, message: str, *, partner: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.partner = partner
        self.status = status


class TransientError(ConnectorError):
    """Network failure, timeout, 5xx: the same call may succeed later."""

    retryable = True


class PermanentError(ConnectorError):
    """Rejected input or protocol violation: retrying the same call cannot help."""


class BusinessRefusal(PermanentError):
    """The partner refused the document on business grounds (anomaly, rejection)."""
