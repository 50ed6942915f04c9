"""``ObjectStore.bucket_view``: another bucket with the store's record rules (no S3 needed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from minio.error import S3Error

from bus.audit.store import JournalStore
from bus.objectstore import ObjectStore
from bus.settings import Settings


class _Response(io.BytesIO):
    def release_conn(self) -> None:
        return None


class FakeS3:
    """Objects per bucket; an absent bucket or key answers the S3 error codes."""

    def __init__(self, buckets: dict[str, dict[str, bytes]]) -> None:
        self.buckets = buckets
        self.puts: list[dict[str, Any]] = []

    def _objects(self, bucket: str) -> dict[str, bytes]:
        if bucket not in self.buckets:
            raise S3Error(None, "NoSuchBucket", "no bucket", bucket, "r", "h")  # type: ignore[arg-type]
        return self.buckets[bucket]

    def get_object(self, bucket: str, key: str, offset: int = 0, length: int = 0) -> _Response:
        objects = self._objects(bucket)
        if key not in objects:
            raise S3Error(None, "NoSuchKey", "no key", key, "r", "h")  # type: ignore[arg-type]
        data = objects[key][offset:]
        return _Response(data[:length] if length else data)

    def list_objects(self, bucket: str, prefix: str, recursive: bool) -> list[Any]:
        objects = self._objects(bucket)
        return [type("Obj", (), {"object_name": k}) for k in objects if k.startswith(prefix)]

    def put_object(self, bucket: str, key: str, data: io.BytesIO, length: int,
                   **extra: Any) -> None:
        self._objects(bucket)[key] = data.read(length)
        self.puts.append({"bucket": bucket, "key": key} | extra)


def _settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, bucket="demat", s3_endpoint="127.0.0.1:1",  # never dialled
                    s3_access_key="test", s3_secret_key="test-secret")


@pytest.fixture()
def store(tmp_path: Path) -> ObjectStore:
    store = ObjectStore(_settings(tmp_path))
    store.client = FakeS3({"demat": {"a.json": b"{}"}})  # type: ignore[assignment]
    return store


def test_view_reads_and_writes_its_own_bucket(store: ObjectStore) -> None:
    store.client.buckets["other"] = {}  # type: ignore[attr-defined]
    view = store.bucket_view("other")
    view.put_record("k/1.txt", b"hello", content_type="text/plain")
    assert view.bucket == "other" and store.bucket == "demat"
    assert view.get_record("k/1.txt") == b"hello" and store.get_record("k/1.txt") is None
    assert view.list_keys("k/") == ["k/1.txt"] and store.list_keys("k/") == []
    assert view.get_record("a.json") is None and store.get_json("a.json") == {}
    assert store.client.puts[-1]["content_type"] == "text/plain"  # type: ignore[attr-defined]


def test_view_of_a_bucket_not_made_yet_reads_as_empty(store: ObjectStore) -> None:
    view = store.bucket_view("later")
    assert view.get_record("x") is None and view.list_keys("") == []
    store.bucket = "gone"
    with pytest.raises(S3Error):  # the bus's own bucket missing is still an error
        store.get_record("x")


def test_journal_store_reads_and_writes_through_the_view(store: ObjectStore,
                                                         tmp_path: Path) -> None:
    journal = JournalStore(_settings(tmp_path), store)
    assert journal.objects.bucket == journal.bucket == "demat-journal"
    assert journal.get("journal/segments/0000000001.jsonl") is None
    assert journal.numbered("journal/segments/", "jsonl") == []
    store.client.buckets["demat-journal"] = {}  # type: ignore[attr-defined]
    journal.locked = True
    journal.put("journal/segments/0000000001.jsonl", b"{}\n", "application/x-ndjson")
    assert journal.get("journal/segments/0000000001.jsonl") == b"{}\n"
    assert journal.numbered("journal/segments/", "jsonl") == ["journal/segments/0000000001.jsonl"]
    put = store.client.puts[-1]  # type: ignore[attr-defined]
    assert put["bucket"] == "demat-journal" and put["retention"] is not None
