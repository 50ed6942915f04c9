"""Seal key material: a tenant's key and certificate (PKCS#12 or PEM), or demo material.

Secrets (key files, inline keys, passwords) are never logged nor shown in ``repr``.
Without configured material the seal uses a demo CA and a demo seal certificate
generated on first use under ``<var>/seal-demo/``: they are named as demo material
and must never serve in production.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from connectors.private import FILE_MODE, private_dir, write_private

DEMO_CA_NAME = "demat-bus DEMO CA - not for production"
DEMO_SEAL_PREFIX = "demat-bus DEMO seal"
DEMO_DIR = "seal-demo"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class SealConfigError(ValueError):
    """Seal key material that cannot be loaded; the message names the option, not the secret."""


@dataclass(frozen=True)
class SealIdentity:
    """A signing key with its certificate and issuer chain (key hidden from ``repr``)."""

    key: PrivateKey = field(repr=False)
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    demo: bool = False

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def common_name(self) -> str:
        names = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else self.subject

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def describe(self) -> dict[str, Any]:
        """The public facts of the identity (journal-safe)."""
        return {"subject": self.subject, "issuer": self.cert.issuer.rfc4514_string(),
                "serial": format(self.cert.serial_number, "x"),
                "not_before": self.cert.not_valid_before_utc.isoformat(),
                "not_after": self.cert.not_valid_after_utc.isoformat(),
                "cert_sha256": hashlib.sha256(
                    self.cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
                "demo": self.demo}


def load_identity(options: dict[str, Any], *, var_dir: Path, holder: str) -> SealIdentity:
    """The identity described by connector ``options`` (demo material when none is given).

    Options: ``pkcs12`` (path) or ``pkcs12_base64`` (secret), or ``key`` + ``cert`` (paths)
    or ``key_pem`` + ``cert_pem`` (secrets); ``chain`` (list of certificate paths);
    ``password`` or ``password_env`` (name of an environment variable).
    """
    password = _password(options)
    if "pkcs12" in options or "pkcs12_base64" in options:
        return _from_pkcs12(options, password)
    if any(k in options for k in ("key", "key_pem", "cert", "cert_pem")):
        return _from_pem(options, password)
    demo = {k: str(options[f"demo_{k}"]) for k in ("prefix", "organization")
            if options.get(f"demo_{k}") is not None}
    return demo_identity(var_dir, holder, **demo)


def _password(options: dict[str, Any]) -> bytes | None:
    if options.get("password_env"):
        name = str(options["password_env"])
        if name not in os.environ:
            raise SealConfigError(f"seal option password_env: variable {name} is not set")
        return os.environ[name].encode()
    if options.get("password") is not None:
        return str(options["password"]).encode()
    return None


def _read(options: dict[str, Any], path_key: str) -> bytes:
    try:
        return Path(str(options[path_key])).expanduser().read_bytes()
    except OSError as exc:
        raise SealConfigError(f"seal option {path_key}: cannot read {options[path_key]}: "
                              f"{exc.strerror}") from None


def _from_pkcs12(options: dict[str, Any], password: bytes | None) -> SealIdentity:
    source = "pkcs12" if "pkcs12" in options else "pkcs12_base64"
    try:
        data = (_read(options, "pkcs12") if source == "pkcs12"
                else base64.b64decode(str(options["pkcs12_base64"])))
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except SealConfigError:
        raise
    except Exception:
        raise SealConfigError(f"seal option {source}: not a PKCS#12 bundle or wrong "
                              f"password") from None
    if key is None or cert is None:
        raise SealConfigError(f"seal option {source}: bundle holds no key or no certificate")
    _check_key(key, source)
    return SealIdentity(key, cert, tuple(extra) + _chain(options))  # type: ignore[arg-type]


def _from_pem(options: dict[str, Any], password: bytes | None) -> SealIdentity:
    key_data = _read(options, "key") if "key" in options else str(
        options.get("key_pem", "")).encode()
    cert_data = _read(options, "cert") if "cert" in options else str(
        options.get("cert_pem", "")).encode()
    key_opt = "key" if "key" in options else "key_pem"
    cert_opt = "cert" if "cert" in options else "cert_pem"
    try:
        key = serialization.load_pem_private_key(key_data, password)
    except Exception:
        raise SealConfigError(f"seal option {key_opt}: not a PEM private key or wrong "
                              f"password") from None
    try:
        certs = x509.load_pem_x509_certificates(cert_data)
    except Exception:
        raise SealConfigError(f"seal option {cert_opt}: not a PEM certificate") from None
    _check_key(key, key_opt)
    if certs[0].public_key().public_numbers() != key.public_key().public_numbers():
        raise SealConfigError(f"seal options {key_opt}/{cert_opt}: the key does not match "
                              f"the certificate")
    return SealIdentity(key, certs[0], tuple(certs[1:]) + _chain(options))  # type: ignore[arg-type]


def _check_key(key: object, option: str) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SealConfigError(f"seal option {option}: only EC and RSA keys are supported")


def _chain(options: dict[str, Any]) -> tuple[x509.Certificate, ...]:
    out: list[x509.Certificate] = []
    for i, path in enumerate(options.get("chain") or []):
        try:
            out += x509.load_pem_x509_certificates(Path(path).expanduser().read_bytes())
        except (OSError, ValueError):
            raise SealConfigError(f"seal option chain[{i}]: cannot read a PEM certificate "
                                  f"from {path}") from None
    return tuple(out)


# --- demo material ------------------------------------------------------------------


def demo_ca(var_dir: Path) -> SealIdentity:
    """The demo CA of this var directory (created on first call, shared by processes)."""
    folder = var_dir / DEMO_DIR
    key_path, cert_path = folder / "DEMO-CA-not-for-production.key", folder / "DEMO-CA.pem"
    with _locked(folder):
        if not cert_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEMO_CA_NAME),
                              x509.NameAttribute(NameOID.ORGANIZATION_NAME, "demat-bus demo")])
            cert = (_builder(name, name, key.public_key(), years=10)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                 False, False), critical=True)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                   critical=False)
                    .sign(key, hashes.SHA256()))
            _write_identity(key, cert, key_path, cert_path)
    return _load_pair(key_path, cert_path, demo=True)


def demo_identity(var_dir: Path, holder: str, *, prefix: str = DEMO_SEAL_PREFIX,
                  organization: str = "demat-bus DEMO seal - not for production"
                  ) -> SealIdentity:
    """A demo EC P-256 certificate for ``holder`` (a tenant SIREN, or a signer's name in
    a simulator), issued by the demo CA."""
    ca = demo_ca(var_dir)
    safe = "".join(c for c in holder if c.isalnum() or c in "-_") or "default"
    folder = var_dir / DEMO_DIR
    key_path = folder / f"seal-{safe}-DEMO-not-for-production.key"
    cert_path = folder / f"seal-{safe}-DEMO.pem"
    with _locked(folder):
        if not cert_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            subject = x509.Name([
                x509.NameAttribute(NameOID.COMMON_NAME, f"{prefix} {holder}".strip()[:64]),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64]),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")])
            cert = (_builder(subject, ca.cert.subject, key.public_key(), years=3)
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                   critical=True)
                    .add_extension(x509.KeyUsage(True, True, False, False, False, False, False,
                                                 False, False), critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION,
                                                          ExtendedKeyUsageOID.CODE_SIGNING]),
                                   critical=False)
                    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                        ca.cert.public_key()), critical=False)  # type: ignore[arg-type]
                    .sign(ca.key, hashes.SHA256()))
            _write_identity(key, cert, key_path, cert_path)
    pair = _load_pair(key_path, cert_path, demo=True)
    return SealIdentity(pair.key, pair.cert, (ca.cert,), demo=True)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any, *, years: int
             ) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * years)))


def _write_identity(key: PrivateKey, cert: x509.Certificate, key_path: Path,
                    cert_path: Path) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_private(key_path, pem)
    # the certificate last: its presence means the pair is complete
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _load_pair(key_path: Path, cert_path: Path, *, demo: bool) -> SealIdentity:
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    return SealIdentity(key, x509.load_pem_x509_certificate(cert_path.read_bytes()),  # type: ignore[arg-type]
                        demo=demo)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    private_dir(folder)
    fd = os.open(folder / ".lock", os.O_WRONLY | os.O_CREAT, FILE_MODE)
    with os.fdopen(fd, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
