"""Locks on the embedded SeaweedFS's own ports (master, volume, filer: HTTP and gRPC).

S3 identities guard only the S3 port. The others are locked too, through SeaweedFS's
``WEED_*`` settings given to its process: JWT signing keys (made at every start) so the
filer and volume servers refuse unsigned HTTP reads and writes, and mutual TLS on every
gRPC port with a CA and certificate made once under ``<var>/secrets/weed/`` (0600).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from connectors.private import write_private

JWT_KEYS = ("WEED_JWT_SIGNING_KEY", "WEED_JWT_SIGNING_READ_KEY",
            "WEED_JWT_FILER_SIGNING_KEY", "WEED_JWT_FILER_SIGNING_READ_KEY")
GRPC_PARTS = ("MASTER", "VOLUME", "FILER", "S3", "CLIENT", "ADMIN", "WORKER")
CN = "demat-embedded-seaweedfs"


def security_env(var_dir: Path) -> dict[str, str]:
    """The ``WEED_*`` variables locking the servers of ``var_dir``'s SeaweedFS."""
    ca, cert, key = grpc_files(var_dir)
    env = {name: secrets.token_hex(32) for name in JWT_KEYS}
    env["WEED_GRPC_CA"] = str(ca)
    for part in GRPC_PARTS:
        env[f"WEED_GRPC_{part}_CERT"], env[f"WEED_GRPC_{part}_KEY"] = str(cert), str(key)
    for part in GRPC_PARTS[:4]:  # servers take only our certificate's holder
        env[f"WEED_GRPC_{part}_ALLOWED_COMMONNAMES"] = CN
    return env


def grpc_files(var_dir: Path) -> tuple[Path, Path, Path]:
    """CA, certificate and key of the gRPC mutual TLS (made on first use)."""
    folder = var_dir / "secrets" / "weed"
    paths = folder / "ca.pem", folder / "grpc.pem", folder / "grpc.key"
    if not all(p.exists() for p in paths):
        for path, data in zip(paths, _new_pki(), strict=True):
            write_private(path, data)
    return paths


def _new_pki() -> tuple[bytes, bytes, bytes]:
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{CN} CA")
    ca = (_builder(ca_name, ca_name, ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (_builder(_name(CN), ca_name, key.public_key())
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), cert.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
             ) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650)))
