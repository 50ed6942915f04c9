"""The embedded SeaweedFS's S3 identity: one access key and a generated secret.

They live in the SeaweedFS identities file (``-s3.config``), 0600 under
``<var>/secrets/``, made once and reused on every restart; with identities configured
SeaweedFS refuses anonymous requests. The bus reads its credentials from the same file.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from connectors.private import create_private_once

IDENTITY = "demat"  # the identity (and access key) of the bus on its embedded store
ACTIONS = ["Admin", "Read", "List", "Tagging", "Write"]


def identities_path(var_dir: Path) -> Path:
    return var_dir / "secrets" / "s3-identities.json"


def _new_identities() -> bytes:
    secret = secrets.token_urlsafe(32)
    identity = {"name": IDENTITY, "actions": ACTIONS,
                "credentials": [{"accessKey": IDENTITY, "secretKey": secret}]}
    return json.dumps({"identities": [identity]}, indent=2).encode()


def ensure_identities(var_dir: Path) -> Path:
    """The identities file of ``var_dir``'s store, generated on first use."""
    path = identities_path(var_dir)
    create_private_once(path, _new_identities)
    return path


def read_credentials(path: Path) -> tuple[str, str]:
    """The bus identity's access and secret key from the identities file ``path``."""
    try:
        config = json.loads(path.read_text())
        for identity in config["identities"]:
            if identity.get("name") == IDENTITY:
                cred = identity["credentials"][0]
                return str(cred["accessKey"]), str(cred["secretKey"])
    except OSError as exc:
        raise RuntimeError(f"S3 identities file {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise RuntimeError(f"S3 identities file {path}: not a SeaweedFS identities "
                           f"file ({exc!r})") from exc
    raise RuntimeError(f"S3 identities file {path}: no identity named {IDENTITY!r}")
