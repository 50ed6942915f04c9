"""Archival of documents: the ``archive`` step, SEDA mapping per flow, and the
``batcher`` service group that sends many documents in one SIP."""

from workers.archive import batcher, step  # noqa: F401  (each registers what it defines)
