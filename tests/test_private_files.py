"""Files only their owner may read (connectors.private), and the ones the bus makes so."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.s3identity import ensure_identities, identities_path, read_credentials
from connectors.private import (
    create_private_once,
    open_private_append,
    private_dir,
    private_umask,
    tighten,
    write_private,
)
from connectors.tsa.simulator import TsaKeys


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _open_umask() -> Iterator[None]:
    """Run under the usual umask 022: the helpers must not depend on the caller's."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_private_dir_makes_every_missing_parent_0700(tmp_path: Path) -> None:
    leaf = private_dir(tmp_path / "a" / "b" / "c")
    assert [_mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", leaf)] == [0o700] * 3


def test_write_private_is_0600_and_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "x.json"
    write_private(path, "one")
    write_private(path, b"two")
    assert path.read_bytes() == b"two" and _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]  # no temporary left


def test_create_private_once_keeps_the_first_content_under_races(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        create_private_once(path, lambda: f"value {i}".encode()))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and results[0] == path.read_bytes()
    assert _mode(path) == 0o600 and len(list(tmp_path.iterdir())) == 1


def test_open_private_append_makes_a_0600_log(tmp_path: Path) -> None:
    log = tmp_path / "log" / "weed.log"
    for line in (b"a\n", b"b\n"):
        with open_private_append(log) as fh:
            fh.write(line)
    assert log.read_bytes() == b"a\nb\n" and _mode(log) == 0o600


def test_private_umask_is_restored(tmp_path: Path) -> None:
    with private_umask():
        (tmp_path / "inside").write_text("x")
    (tmp_path / "after").write_text("x")
    assert _mode(tmp_path / "inside") == 0o600 and _mode(tmp_path / "after") == 0o644


def test_tighten_takes_group_and_others_off(tmp_path: Path) -> None:
    path = tmp_path / "old.pem"
    path.write_text("k")
    path.chmod(0o644)
    tighten(path)
    assert _mode(path) == 0o600


def test_the_tsa_simulators_key_is_private_even_an_old_one(tmp_path: Path) -> None:
    keys = tmp_path / "tsa"
    TsaKeys(keys)
    assert {p.name: _mode(p) for p in keys.iterdir()} == {
        "tsa-key.pem": 0o600, "ca.pem": 0o600, "tsa.pem": 0o600}
    assert _mode(keys) == 0o700
    (keys / "tsa-key.pem").chmod(0o644)  # as an older bus left it
    TsaKeys(keys)
    assert _mode(keys / "tsa-key.pem") == 0o600


def test_the_embedded_s3_identity_is_generated_once(tmp_path: Path) -> None:
    path = ensure_identities(tmp_path)
    assert path == identities_path(tmp_path) and _mode(path) == 0o600
    access, secret = read_credentials(path)
    assert ensure_identities(tmp_path) == path and read_credentials(path) == (access, secret)
    assert access == "demat" and len(secret) >= 40
    other = read_credentials(ensure_identities(tmp_path / "elsewhere"))
    assert other[1] != secret


def test_a_broken_identities_file_is_named(tmp_path: Path) -> None:
    path = identities_path(tmp_path)
    write_private(path, '{"identities": [{"name": "someone"}]}')
    with pytest.raises(RuntimeError, match="no identity named 'demat'"):
        read_credentials(path)
    write_private(path, "not json")
    with pytest.raises(RuntimeError, match="not a SeaweedFS identities file"):
        read_credentials(path)
