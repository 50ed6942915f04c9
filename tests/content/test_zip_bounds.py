"""Producer ZIPs (payroll runs) expanded within bounds, under the data directory."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest

from bus.unzip import ZipLimits, ZipRefused, extract_zip

SMALL = ZipLimits(max_members=5, max_member_bytes=4 * 1024 * 1024,
                  max_total_bytes=6 * 1024 * 1024, max_ratio=100, ratio_floor=1024 * 1024)
MB = 1024 * 1024


def _zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]],
         compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _noise(n: int) -> bytes:
    """``n`` bytes nothing compresses."""
    out = bytearray()
    while len(out) < n:
        out += hashlib.sha256(len(out).to_bytes(8, "little")).digest()
    return bytes(out[:n])


def _link() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("link.pdf")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _lying_size(path: Path) -> Path:
    """A member whose central directory says 10 bytes but expands to 3 MB."""
    _zip(path, [("a.pdf", b"\0" * 3 * MB)])
    raw = bytearray(path.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = (10).to_bytes(4, "little")  # uncompressed size, central dir
    path.write_bytes(bytes(raw))
    return path


# (name, members, words of the refusal)
HOSTILE = [
    ("bomb-ratio", [("a.pdf", b"\0" * 5 * MB)], "a ZIP bomb"),
    ("member-too-large", [("a.pdf", _noise(4 * MB + 1))], "this entry expands beyond"),
    ("total-too-large", [(f"{i}.pdf", _noise(3 * MB)) for i in range(3)],
     "the archive expands beyond"),
    ("too-many", [(f"{i}.pdf", b"x") for i in range(6)], "6 entries"),
    ("dot-dot", [("../evil.pdf", b"x")], "leaves the archive folder"),
    ("nested-dot-dot", [("a/../../evil.pdf", b"x")], "leaves the archive folder"),
    ("absolute", [("/etc/evil.pdf", b"x")], "leaves the archive folder"),
    ("backslash-dot-dot", [("..\\evil.pdf", b"x")], "leaves the archive folder"),
    ("drive-letter", [("C:/evil.pdf", b"x")], "leaves the archive folder"),
    ("symlink", [(_link(), b"/etc/passwd")], "symbolic link"),
    ("control-char", [("a\x01.pdf", b"x")], "control character"),
    ("same-name-twice", [("a.pdf", b"1"), ("a.pdf", b"2")], "twice"),
    ("same-name-other-case", [("A.pdf", b"1"), ("a.PDF", b"2")], "twice"),
]


@pytest.mark.parametrize(("name", "members", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_zip_refused(tmp_path: Path, name: str, members: list, reason: str) -> None:
    source = _zip(tmp_path / "run.zip", members)
    work = tmp_path / "var" / "tmp"
    with pytest.raises(ZipRefused, match=reason):
        extract_zip(source, work, SMALL)
    assert list(work.iterdir()) == []  # nothing left behind
    assert not (tmp_path / "evil.pdf").exists()


def test_declared_size_lies_are_caught_while_writing(tmp_path: Path) -> None:
    source = _lying_size(tmp_path / "run.zip")
    limits = ZipLimits(max_member_bytes=1 * MB)
    with pytest.raises((ZipRefused, zipfile.BadZipFile)):
        extract_zip(source, tmp_path / "work", limits)
    assert list((tmp_path / "work").iterdir()) == []


def test_normal_run_expands_under_the_work_dir(tmp_path: Path) -> None:
    source = _zip(tmp_path / "run.zip", [("index.csv", b"a,b\n"), ("p/1.pdf", b"%PDF-1.7")])
    work = tmp_path / "var" / "tmp"
    tmp = extract_zip(source, work, SMALL)
    try:
        root = Path(tmp.name)
        assert root.parent == work
        assert (root / "p" / "1.pdf").read_bytes() == b"%PDF-1.7"
    finally:
        tmp.cleanup()
    assert list(work.iterdir()) == []


def test_stored_zip_of_incompressible_data_is_no_bomb(tmp_path: Path) -> None:
    data = io.BytesIO()
    data.write(bytes(range(256)) * 4096)
    source = _zip(tmp_path / "run.zip", [("a.pdf", data.getvalue())], zipfile.ZIP_STORED)
    extract_zip(source, tmp_path / "w", SMALL).cleanup()
