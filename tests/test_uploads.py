"""Resumable chunked uploads against the real object store (SeaweedFS)."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from bus.objectstore import ObjectStore
from bus.settings import Settings
from bus.uploads import UploadError, UploadMissing, Uploads
from schemas.envelope import FileRole

pytestmark = pytest.mark.stack
TENANT, OTHER = "214502494", "216900910"
MB = 1024 * 1024


@pytest.fixture()
def uploads(stack, settings: Settings) -> Uploads:
    store = ObjectStore(settings)
    store.ensure_bucket()
    return Uploads(store, max_size=64 * MB)


def _send(uploads: Uploads, upload_id: str, data: bytes, offset: int, tenant: str = TENANT):
    return uploads.append(tenant, upload_id, offset, io.BytesIO(data), len(data))


def test_chunks_resent_and_resumed_make_one_verified_file(uploads: Uploads) -> None:
    data = os.urandom(21 * MB + 17)
    chunks = [data[i:i + 8 * MB] for i in range(0, len(data), 8 * MB)]
    upload = uploads.start(TENANT, "plans.tar", len(data))
    _send(uploads, upload.id, chunks[0], 0)
    again = _send(uploads, upload.id, chunks[0], 0)  # the answer was lost: sent again
    assert again.received == len(chunks[0]) and len(again.parts) == 1
    with pytest.raises(UploadError) as gap:
        _send(uploads, upload.id, chunks[2], 16 * MB)  # skipping a chunk
    assert gap.value.field == "offset"
    resumed = uploads.get(TENANT, upload.id)  # after a broken connection: where are we?
    offset = resumed.received
    for chunk in chunks[1:]:
        offset = _send(uploads, upload.id, chunk, offset).received
    with pytest.raises(UploadMissing):
        uploads.get(OTHER, upload.id)  # another tenant does not see it
    ref = uploads.complete(TENANT, upload.id, role=FileRole.MAIN, encrypt=True)
    assert (ref.sha256, ref.size, ref.name) == (hashlib.sha256(data).hexdigest(), len(data),
                                                "plans.tar")
    assert uploads.complete(TENANT, upload.id) == ref  # completing twice: the same file
    store = uploads.store
    assert store.is_encrypted(TENANT, ref.sha256)
    assert hashlib.sha256(b"".join(store.iter_file(TENANT, ref))).hexdigest() == ref.sha256
    assert store.list_keys(f"uploads/{TENANT}/{upload.id}/") == []  # chunks removed


def test_bad_requests_name_the_field(uploads: Uploads) -> None:
    for name, size, field in (("", 10, "name"), ("a/b", 10, "name"), ("a", 0, "size"),
                              ("a", 65 * MB, "size")):
        with pytest.raises(UploadError) as err:
            uploads.start(TENANT, name, size)
        assert err.value.field == field
    upload = uploads.start(TENANT, "a.pdf", 10)
    with pytest.raises(UploadError) as err:
        _send(uploads, upload.id, b"x" * 11, 0)
    assert err.value.field == "length"
    with pytest.raises(UploadError) as err:
        uploads.append(TENANT, upload.id, 0, io.BytesIO(b"x" * 4), 10)  # body shorter
    assert err.value.field == "length"
    with pytest.raises(UploadError) as err:
        uploads.complete(TENANT, upload.id)
    assert err.value.field == "size"
    with pytest.raises(UploadMissing):
        uploads.get(TENANT, "../../etc")
