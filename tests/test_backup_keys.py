"""A backup's keys metadata: identifiers, never keys; a target with other keys refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bus.backup import public_settings
from bus.backup.keys import key_problems, keys_metadata
from bus.crypto import Keyring
from bus.runtime import Runtime
from bus.settings import Settings

TENANT = "216900910"


def _bus(var: Path) -> Settings:
    Keyring(var).kek(TENANT)  # the embedded key, made on first use
    (var / "audit").mkdir(parents=True, exist_ok=True)
    (var / "audit" / "index-secret").write_text("s3cret-index\n")
    return Settings(var_dir=var)


def test_metadata_names_keys_without_their_material(tmp_path: Path) -> None:
    settings = _bus(tmp_path / "a")
    meta = keys_metadata(settings, [TENANT], {TENANT: 3})
    kek = (tmp_path / "a" / "keys" / f"{TENANT}.kek").read_bytes()
    assert meta["tenants"][TENANT]["encrypted_objects"] == 3
    assert meta["tenants"][TENANT]["kek_id"] == Keyring(tmp_path / "a").kek_id(TENANT).hex()
    assert kek.decode() not in str(meta) and "s3cret-index" not in str(meta)
    assert key_problems(settings, meta) == []


def test_encrypted_files_without_a_key_cannot_be_backed_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tenant 200000000: 2 encrypted file"):
        keys_metadata(_bus(tmp_path), [], {"200000000": 2})


def test_a_target_without_the_keys_or_with_others_is_named(tmp_path: Path) -> None:
    meta = keys_metadata(_bus(tmp_path / "a"), [TENANT], {TENANT: 1})
    empty = Settings(var_dir=tmp_path / "b")
    problems = key_problems(empty, meta)
    assert any(f"tenant {TENANT}: no key here" in p for p in problems)
    assert any("index secret: missing here" in p for p in problems)
    assert not (tmp_path / "b" / "keys").exists()  # checking made no key
    other = _bus(tmp_path / "c")
    (tmp_path / "c" / "audit" / "index-secret").write_text("another\n")
    problems = key_problems(other, meta)
    assert any(f"tenant {TENANT}: key id" in p and "is not the backed-up" in p
               for p in problems)
    assert any(p.startswith("index secret at") for p in problems)
    shutil.copy(tmp_path / "a" / "keys" / f"{TENANT}.kek", tmp_path / "c" / "keys")
    shutil.copy(tmp_path / "a" / "audit" / "index-secret", tmp_path / "c" / "audit")
    assert key_problems(other, meta) == []


def test_the_settings_a_backup_keeps_hold_no_secret(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, s3_secret_key="s3-very-secret", s3_access_key="ak",
                        kafka_password="kafka-pw", kafka_security_protocol="SASL_SSL",
                        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_username="u",
                        index_secret="idx", oidc_client_secret="oc")
    kept = public_settings(Runtime(settings))
    assert kept["bucket"] == "demat" and "var_dir" in kept
    assert not {"s3_secret_key", "s3_access_key", "kafka_password", "index_secret",
                "oidc_client_secret"} & set(kept)
