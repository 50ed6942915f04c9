"""Locked stores on the real embedded stack: the S3 store answers only its identity, and
everything the stack and the bus write under var/ is for their user alone."""

from __future__ import annotations

import io
import json
import os
import socket
import ssl
import stat
import uuid
from pathlib import Path

import httpx
import pytest
from minio import Minio
from minio.error import S3Error

from bus.dev.embedded import ROOT_VAR_MODE, WEED_PORTS, EmbeddedStack
from bus.dev.launcher import Services
from bus.dev.weedsec import grpc_files
from bus.objectstore import ObjectStore
from bus.s3identity import ensure_identities, identities_path, read_credentials
from bus.settings import Settings

pytestmark = pytest.mark.stack


def test_anonymous_s3_requests_are_refused_signed_ones_work(stack: EmbeddedStack,
                                                            settings: Settings) -> None:
    store = ObjectStore(settings)
    store.ensure_bucket()
    key = f"probe/{uuid.uuid4().hex}"
    store.client.put_object(store.bucket, key, io.BytesIO(b"secret"), 6)
    base = f"http://{settings.s3}"
    for method, path in [("GET", f"/{store.bucket}/{key}"), ("PUT", f"/{store.bucket}/{key}"),
                         ("DELETE", f"/{store.bucket}/{key}"), ("GET", f"/{store.bucket}"),
                         ("GET", "/"), ("PUT", f"/anonymous-{uuid.uuid4().hex[:8]}")]:
        answer = httpx.request(method, base + path, content=b"evil" if method == "PUT" else None)
        assert answer.status_code == 403, (method, path, answer.status_code)
    assert store.client.get_object(store.bucket, key).read() == b"secret"  # not overwritten
    wrong = Minio(settings.s3, access_key=settings.s3_keys[0], secret_key="demat-secret",
                  secure=False)
    with pytest.raises(S3Error) as refused:
        wrong.get_object(store.bucket, key)
    assert refused.value.code == "SignatureDoesNotMatch"
    store.client.remove_object(store.bucket, key)


def test_the_stores_other_ports_refuse_anonymous_calls(stack: EmbeddedStack,
                                                      settings: Settings) -> None:
    """Filer and volume HTTP want a JWT, the master's HTTP API answers no address, every
    gRPC port wants our client certificate: none bypasses the S3 identity."""
    store = ObjectStore(settings)
    store.ensure_bucket()
    key = f"probe/{uuid.uuid4().hex}"
    store.client.put_object(store.bucket, key, io.BytesIO(b"x" * 300_000), 300_000)
    ports = stack.info["ports"]
    filer, master, volume = (f"http://127.0.0.1:{ports[n]}" for n in ("filer", "master",
                                                                      "volume"))
    calls = [("GET", f"{filer}/buckets/{store.bucket}/{key}"),
             ("GET", f"{filer}/buckets/{store.bucket}/"),
             ("PUT", f"{filer}/buckets/{store.bucket}/intruder"),
             ("DELETE", f"{filer}/buckets/{store.bucket}/{key}"),
             ("GET", f"{master}/col/delete?collection={store.bucket}"),
             ("GET", f"{master}/dir/assign"), ("GET", f"{master}/vol/vacuum"),
             ("GET", f"{volume}/1,01637037d6"), ("POST", f"{volume}/1,01637037d6")]
    for method, url in calls:
        answer = httpx.request(method, url, content=b"evil" if method in ("PUT", "POST")
                               else None, timeout=30)
        assert answer.status_code == 401, (method, url, answer.status_code)
    for name in WEED_PORTS:
        assert _grpc_refuses_strangers(ports[name] + 10000, stack.var_dir), name
    assert store.client.get_object(store.bucket, key).read() == b"x" * 300_000
    store.client.remove_object(store.bucket, key)


def _grpc_refuses_strangers(port: int, var_dir: Path) -> bool:
    """A TLS client trusting the store's CA but without a certificate is refused."""
    ca, _cert, _key = grpc_files(var_dir)
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            tls.recv(100)
    except ssl.SSLError as exc:
        return "CERTIFICATE_REQUIRED" in str(exc)
    return False


def test_s3_secret_is_generated_private_and_read_by_the_bus(stack: EmbeddedStack,
                                                            settings: Settings,
                                                            var_dir: Path) -> None:
    path = identities_path(var_dir)
    assert stack.info["s3_identities"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    access, secret = read_credentials(path)
    assert settings.s3_keys == (access, secret)
    assert len(secret) >= 40 and secret != "demat-secret"
    before = path.read_bytes()
    assert ensure_identities(var_dir) == path and path.read_bytes() == before  # reused
    assert secret not in json.dumps(stack.info)  # stack.json names the file, not the secret


def test_every_file_under_var_is_private_after_a_demo(demat, services: Services,
                                                      var_dir: Path) -> None:
    run = demat("demo", "--json", "--timeout", "300", timeout=420)  # a shared, busy machine
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-2000:])
    expected_root = ROOT_VAR_MODE if os.geteuid() == 0 else 0o700
    assert stat.S_IMODE(var_dir.stat().st_mode) == expected_root
    seen, exposed = _walk_modes(var_dir)
    assert not exposed, exposed
    # what the stack and the bus write is among what was checked
    for name in ("stack.json", "ports.json", "services.json", "simulators.json",
                 "secrets/s3-identities.json", "secrets/weed/grpc.key", "tsa/tsa-key.pem",
                 "log/weed.log", "log/weed-master.log",
                 "log/router.log", "pg/PG_VERSION"):
        assert name in seen, name
    assert any(n.startswith("keys/") for n in seen) and any(n.startswith("audit/") for n in seen)


def _walk_modes(root: Path) -> tuple[set[str], list[tuple[str, str]]]:
    """Every path under ``root`` (relative) and those group or others may use."""
    seen: set[str] = set()
    exposed: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            try:
                info = path.lstat()
            except FileNotFoundError:  # a temporary file renamed meanwhile
                continue
            relative = str(path.relative_to(root))
            seen.add(relative)
            if _allowed(relative, info.st_mode):
                continue
            exposed.append((relative, oct(stat.S_IMODE(info.st_mode))))
    return seen, exposed


def _allowed(relative: str, mode: int) -> bool:
    if stat.S_IMODE(mode) & 0o077 == 0 or stat.S_ISLNK(mode):
        return True
    # PostgreSQL's Unix socket is 0777 by design; its folder (pg/, 0700) guards it
    if stat.S_ISSOCK(mode):
        return True
    # SeaweedFS chmods its volume-info files 0644 whatever the umask; they lie in s3/
    # (0700, checked too) and hold no content (version, replication, size of a volume)
    return relative.startswith("s3/") and relative.endswith(".vif") and \
        stat.S_IMODE(mode) == 0o644
