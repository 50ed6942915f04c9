"""WebDAV document store (GED or an agent's personal space, as Nextcloud offers)."""
