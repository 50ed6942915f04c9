"""Media type from content (magic bytes), never from the file name."""

from __future__ import annotations

_MAGIC: list[tuple[bytes, str]] = [
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\xd0\xcf\x11\xe0", "application/x-ole-storage"),
]

HEAD_SIZE = 512


def sniff(head: bytes) -> str:
    """Guess the media type of a file from its first bytes."""
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<?xml") or (text.startswith(b"<") and b">" in text):
        return "application/xml"
    if text[:1] in (b"{", b"[") and _is_text(head):
        return "application/json"
    return "text/plain" if head and _is_text(head) else "application/octet-stream"


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the end of the sample is still text
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return b"\x00" not in head
