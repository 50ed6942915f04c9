"""The embedded SeaweedFS's locks: JWT keys and the gRPC mutual TLS material."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from bus.dev.weedsec import CN, GRPC_PARTS, JWT_KEYS, grpc_files, security_env


def test_the_grpc_material_is_made_once_private(tmp_path: Path) -> None:
    paths = grpc_files(tmp_path)
    before = [p.read_bytes() for p in paths]
    assert grpc_files(tmp_path) == paths and [p.read_bytes() for p in paths] == before
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths} == {0o600}
    assert stat.S_IMODE(paths[0].parent.stat().st_mode) == 0o700


def test_the_certificate_serves_and_dials_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    ca_path, cert_path, _key = grpc_files(tmp_path)
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    cert.verify_directly_issued_by(ca)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)
    assert cert.subject.rfc4514_string() == f"CN={CN}"


def test_every_server_gets_the_locks_and_fresh_jwt_keys(tmp_path: Path) -> None:
    env, again = security_env(tmp_path), security_env(tmp_path)
    assert all(len(env[k]) == 64 for k in JWT_KEYS)
    assert all(env[k] != again[k] for k in JWT_KEYS)  # made at every start
    ca, cert, key = (str(p) for p in grpc_files(tmp_path))
    assert env["WEED_GRPC_CA"] == ca
    for part in GRPC_PARTS:
        assert (env[f"WEED_GRPC_{part}_CERT"], env[f"WEED_GRPC_{part}_KEY"]) == (cert, key)
    assert env["WEED_GRPC_FILER_ALLOWED_COMMONNAMES"] == CN
