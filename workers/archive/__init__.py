"""Archival of documents: SEDA mapping per flow, batches of many documents per SIP."""
