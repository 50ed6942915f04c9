"""Small valid one-page PDFs of text lines (Helvetica), written by hand: what simulators
return as partner documents (a signature slip) and what demos submit."""

from __future__ import annotations


def text_pdf(lines: list[str], *, size: int = 10, encoding: str = "latin-1",
             image: tuple[int, int, bytes] | None = None) -> bytes:
    """A one-page A4 PDF showing ``lines`` (characters outside ``encoding`` become '?'),
    and ``image`` (width, height, 8-bit grey pixels) below them when given."""
    shown = b" T* ".join(b"(" + _escaped(line, encoding) + b") Tj" for line in lines)
    stream = b"BT /F1 %d Tf %d TL 50 800 Td " % (size, size + 4) + shown + b" ET"
    xobject = b""
    if image is not None:
        stream += b" q %d 0 0 %d 50 50 cm /Im1 Do Q" % (image[0], image[1])
        xobject = b" /XObject << /Im1 6 0 R >>"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
               b"/Resources << /Font << /F1 4 0 R >>" + xobject + b" >> /Contents 5 0 R >>",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"]
    if image is not None:
        width, height, pixels = image
        objects.append(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace "
                       b"/DeviceGray /BitsPerComponent 8 /Length %d >>\nstream\n"
                       % (width, height, len(pixels)) + pixels + b"\nendstream")
    out, offsets = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def _escaped(line: str, encoding: str) -> bytes:
    raw = line.encode(encoding, "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
