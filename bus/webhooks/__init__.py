"""Push: per-tenant webhook subscriptions to the bus's journal events.

- ``subscriptions``: who wants which event types at which URL (object store, secrets
  encrypted with the tenant's key);
- ``events``: which webhook event types a journal event makes, and their payloads;
- ``signing``: the signature scheme (HMAC-SHA256 over id, timestamp and body) and
  ``verify`` for receivers;
- ``delivery``: one attempt to POST a delivery, its dedup marker and its retry decision.

The service group ``webhooks`` (``bus.services.webhooks``) runs them.
"""
