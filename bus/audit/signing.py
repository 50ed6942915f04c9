"""The bus's Ed25519 signing key (made on first start under the var dir, or configured)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bus.audit.config import read_or_create_secret
from bus.settings import Settings


def key_path(settings: Settings) -> Path:
    return settings.audit_key_file or settings.var_dir / "audit" / "bus-ed25519.pem"


def key_id(public: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the raw public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def verify(public_pem_bytes: bytes, signature: bytes, data: bytes) -> bool:
    key = serialization.load_pem_public_key(public_pem_bytes)
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


@dataclass
class BusKey:
    """The private key that signs checkpoints."""

    private: Ed25519PrivateKey

    @classmethod
    def load_or_create(cls, settings: Settings) -> BusKey:
        path = key_path(settings)
        pem = read_or_create_secret(path, lambda: Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        key = serialization.load_pem_private_key(pem, None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return cls(key)

    @property
    def key_id(self) -> str:
        return key_id(self.private.public_key())

    @property
    def public_pem(self) -> bytes:
        return public_pem(self.private.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def local_public_pem(settings: Settings) -> bytes | None:
    """The public half of the local key file, if this machine has it."""
    path = key_path(settings)
    if not path.exists():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    return public_pem(key.public_key()) if isinstance(key, Ed25519PrivateKey) else None
