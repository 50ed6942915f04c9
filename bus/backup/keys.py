"""What key material a bus has and where, for a backup: never the keys themselves.

A backup holds no secret key. It records, per tenant, the *identifier* of the key that
encrypts its files (``kek_id``: 8 bytes of a hash of the key, the very value written in
the header of each encrypted object, so it tells no more than the objects do) and
where the key comes from; the identifier of the journal's signing key (its public key
is in the journal bucket, backed up with it); and a fingerprint of the search-key
secret. The keys live in the site's secret store (``DEMAT_KEK_FILE``,
``DEMAT_AUDIT_KEY_FILE``, ``DEMAT_INDEX_SECRET``) or under ``<var>/keys`` and
``<var>/audit`` (embedded): they are restored from there, before ``demat restore``,
which checks that the target has the same keys and refuses otherwise, naming them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives import serialization

from bus.audit.signing import key_id, key_path, local_public_pem
from bus.crypto import Keyring
from bus.settings import Settings


def keys_metadata(settings: Settings, tenants: Iterable[str],
                  encrypted: dict[str, int]) -> dict[str, Any]:
    """The key identifiers and sources of ``tenants`` (and of every tenant with
    encrypted files), of the signing key and of the search-key secret."""
    ring = Keyring(settings.var_dir, settings.kek_file)
    kek = {}
    for tenant in sorted({*tenants, *encrypted}):
        if ring.has_key(tenant):
            kek[tenant] = {"kek_id": ring.kek_id(tenant).hex(), "source": ring.source(tenant),
                           "encrypted_objects": encrypted.get(tenant, 0)}
        elif encrypted.get(tenant):
            raise ValueError(f"tenant {tenant}: {encrypted[tenant]} encrypted file(s) but no "
                             f"key ({ring.source(tenant)}): they could not be read back")
    return {"tenants": kek, "signing_key": _signing(settings),
            "index_secret": _index_secret(settings),
            "note": "identifiers only: the keys are restored from the secret store"}


def _signing(settings: Settings) -> dict[str, str] | None:
    pem = local_public_pem(settings)
    if pem is None:
        return None
    return {"key_id": _pem_id(pem), "source": str(key_path(settings))}


def _pem_id(pem: bytes) -> str:
    public = serialization.load_pem_public_key(pem)
    return key_id(public)  # type: ignore[arg-type]


def _index_secret(settings: Settings) -> dict[str, str] | None:
    secret, source = _secret_of(settings)
    if secret is None:
        return None
    return {"fingerprint": hashlib.sha256(b"demat-index-secret\0" + secret).hexdigest()[:32],
            "source": source}


def _secret_of(settings: Settings) -> tuple[bytes | None, str]:
    if settings.index_secret:
        return settings.index_secret.encode(), "DEMAT_INDEX_SECRET"
    path = settings.var_dir / "audit" / "index-secret"
    return (path.read_bytes().strip() if path.exists() else None), str(path)


def key_problems(settings: Settings, recorded: dict[str, Any]) -> list[str]:
    """What keeps the target from reading the backup: a tenant key, the signing key or
    the search-key secret missing or different from the recorded one (nothing created)."""
    now = keys_metadata(settings, recorded["tenants"], {})
    problems = []
    for tenant, was in recorded["tenants"].items():
        has = now["tenants"].get(tenant)
        if has is None:
            problems.append(f"tenant {tenant}: no key here ({was['source']} in the backed-up "
                            f"bus, key id {was['kek_id']}): its {was['encrypted_objects']} "
                            "encrypted file(s) would not open")
        elif has["kek_id"] != was["kek_id"]:
            problems.append(f"tenant {tenant}: key id {has['kek_id']} ({has['source']}) is not "
                            f"the backed-up bus's {was['kek_id']}")
    for name, field in (("signing_key", "key_id"), ("index_secret", "fingerprint")):
        was, has = recorded.get(name), now[name]
        if was and not has:
            problems.append(f"{name.replace('_', ' ')}: missing here ({was['source']} in the "
                            f"backed-up bus, {field} {was[field]}): restore it first")
        elif was and has and was[field] != has[field]:
            problems.append(f"{name.replace('_', ' ')} at {has['source']} is not the "
                            f"backed-up bus's ({field} {was[field]})")
    return problems
