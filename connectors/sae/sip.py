"""SIP packaging: the files under ``content/`` and the SEDA manifest ``manifest.xml``
in one ZIP or tar(.gz) archive, written to disk as the files stream in.

A file is never held whole in memory: chunks go from the object store into the
archive while their digest (SHA-256 checked against the reference, or SHA-512
computed) is taken; the manifest is built once every digest is known, validated
against its SEDA schema, then added last.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from connectors.frames import read_chunks
from connectors.sae import seda

FORMATS = {"zip": "application/zip", "tar": "application/x-tar",
           "tar.gz": "application/gzip"}
MANIFEST = "manifest.xml"


class SipError(ValueError):
    """A SIP cannot be built (a file differs from its reference, a bad manifest...)."""


@dataclass
class SipFile:
    """One file to package: its place in the SIP, declared size and digest, content."""

    object_id: str
    path: str  # relative to content/, e.g. "doc-id/letter.pdf"
    size: int
    sha256: str
    media_type: str
    chunks: Callable[[], Iterable[bytes]]


@dataclass
class SipPackage:
    """A written SIP."""

    path: Path
    manifest: bytes
    format: str
    size: int
    objects: list[seda.DataObject]

    @property
    def media_type(self) -> str:
        return FORMATS[self.format]

    @property
    def filename(self) -> str:
        return f"{self.path.stem.split('.')[0]}.{self.format}"


class _Hashing(io.RawIOBase):
    """A reader over chunks that hashes and counts what it hands out."""

    def __init__(self, chunks: Iterable[bytes], algorithms: set[str]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""
        self.hashes = {name: hashlib.new(name) for name in algorithms}
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        n = min(len(buffer), len(self._buffer))
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        buffer[:n] = data
        for h in self.hashes.values():
            h.update(data)
        self.size += n
        return n

    def drain(self) -> None:
        """Read to the end (lets the source verify its own digest)."""
        while self.read(1024 * 1024):
            pass


def _content_name(path: str) -> str:
    parts = [p for p in PurePosixPath(path.replace("\\", "/")).parts if p not in ("", ".", "..")]
    if not parts:
        raise SipError(f"file path {path!r} has no usable name")
    return "content/" + "/".join(parts)


def write_sip(dest: Path, files: list[SipFile],
              make_manifest: Callable[[list[seda.DataObject]], bytes], *,
              fmt: str = "zip", algorithm: str = "sha256") -> SipPackage:
    """Write the SIP at ``dest``: files first (streamed), then the validated manifest."""
    if fmt not in FORMATS:
        raise SipError(f"unknown SIP format {fmt!r} (known: {', '.join(FORMATS)})")
    if algorithm not in seda.DIGEST_ALGORITHMS:
        raise SipError(f"unknown digest algorithm {algorithm!r}")
    names = [_content_name(f.path) for f in files]
    if len(set(names)) != len(names):
        raise SipError("two files of the SIP have the same path")
    dest.parent.mkdir(parents=True, exist_ok=True)
    objects: list[seda.DataObject] = []
    with _Archive(dest, fmt) as archive:
        for f, name in zip(files, names, strict=True):
            reader = _Hashing(f.chunks(), {"sha256", algorithm})
            archive.add(name, f.size, reader)
            reader.drain()
            if reader.size != f.size or reader.hashes["sha256"].hexdigest() != f.sha256:
                raise SipError(f"file {f.path!r}: content differs from its reference "
                               f"(size {reader.size}, declared {f.size})")
            objects.append(seda.DataObject(
                id=f.object_id, uri=name, filename=PurePosixPath(name).name, size=f.size,
                digest=reader.hashes[algorithm].hexdigest(), algorithm=algorithm,
                mime_type=f.media_type))
        manifest = make_manifest(objects)
        try:
            seda.validate(manifest, "ArchiveTransfer")
        except seda.SedaError as exc:
            raise SipError(f"manifest rejected by local SEDA validation: {exc}") from None
        archive.add(MANIFEST, len(manifest), io.BytesIO(manifest))
    return SipPackage(path=dest, manifest=manifest, format=fmt, size=dest.stat().st_size,
                      objects=objects)


class _Archive:
    """Sequential writer of a ZIP or tar archive."""

    def __init__(self, dest: Path, fmt: str) -> None:
        self.fmt = fmt
        if fmt == "zip":
            self._zip = zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED,
                                        allowZip64=True)
        else:
            self._tar = tarfile.open(dest, "w:gz" if fmt == "tar.gz" else "w",  # noqa: SIM115
                                     format=tarfile.PAX_FORMAT)

    def add(self, name: str, size: int, reader: io.RawIOBase) -> None:
        if self.fmt == "zip":
            info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
            with self._zip.open(info, "w", force_zip64=size >= 2**31) as out:
                for chunk in read_chunks(reader):
                    out.write(chunk)
            return
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, int(time.time()), 0o644
        try:
            self._tar.addfile(info, io.BufferedReader(reader, 1024 * 1024))
        except OSError as exc:
            raise SipError(f"{name}: {exc}") from None

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        (self._zip if self.fmt == "zip" else self._tar).close()


def read_sip_member(path: Path, fmt: str, name: str) -> Iterator[bytes]:
    """Stream one member of a SIP (used to check a received package)."""
    if fmt == "zip":
        with zipfile.ZipFile(path) as zf, zf.open(name) as fh:
            yield from read_chunks(fh)
        return
    with tarfile.open(path, "r:*") as tf:
        member = tf.extractfile(name)
        if member is None:
            raise KeyError(name)
        yield from read_chunks(member)
