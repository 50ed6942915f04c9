"""Repeat one CMS signature's structure for new digests without rebuilding it.

A seal signs thousands of documents whose CMS containers differ only in two places:
the message-digest attribute and the signature value. Building the container with
asn1crypto costs about 15 ms per signature; ``CmsTemplate`` keeps the DER of the fixed
parts of a container pyhanko built once and splices in the new digest and signature.

A template is only made when the container has nothing else that varies (no signing
time, no timestamp, no unsigned attributes) and when rebuilding the original container
from it gives back the very same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import cms

# signed attributes that are the same for every document sealed by one identity
FIXED_ATTRIBUTES = frozenset({"content_type", "message_digest", "signing_certificate",
                              "signing_certificate_v2", "cms_algorithm_protection"})
SEQUENCE, SET, OCTET_STRING, CONTEXT_0 = 0x30, 0x31, 0x04, 0xA0


def der_length(size: int) -> bytes:
    """DER length octets of a value of ``size`` bytes."""
    if size < 0x80:
        return bytes([size])
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, body: bytes) -> bytes:
    """One DER element: tag, length, value."""
    return bytes([tag]) + der_length(len(body)) + body


@dataclass(frozen=True)
class CmsTemplate:
    """The fixed DER parts of a one-signer detached CMS ``SignedData``."""

    attrs_head: bytes  # signed attributes' content before the message digest
    attrs_tail: bytes  # and after it
    signer_head: bytes  # SignerInfo version, sid, digest algorithm
    signature_algorithm: bytes
    data_head: bytes  # SignedData fields before signerInfos
    content_type: bytes

    @classmethod
    def learn(cls, info: cms.ContentInfo, digest: bytes) -> CmsTemplate | None:
        """A template from ``info`` (signed over ``digest``), or None if it has varying parts."""
        der = info.dump()
        parsed = cms.ContentInfo.load(der)
        signed = parsed["content"]
        if len(signed["signer_infos"]) != 1:
            return None
        signer = signed["signer_infos"][0]
        attrs = signer["signed_attrs"]
        if signer["unsigned_attrs"].dump() or not attrs.dump():
            return None
        if not {a["type"].native for a in attrs} <= FIXED_ATTRIBUTES:
            return None
        body = attrs.contents
        if body.count(digest) != 1:
            return None
        head, tail = body.split(digest)
        template = cls(
            attrs_head=head, attrs_tail=tail,
            signer_head=b"".join(signer[f].dump() for f in ("version", "sid",
                                                             "digest_algorithm")),
            signature_algorithm=signer["signature_algorithm"].dump(),
            data_head=b"".join(signed[f].dump() for f in (
                "version", "digest_algorithms", "encap_content_info", "certificates", "crls")),
            content_type=parsed["content_type"].dump())
        if template.build(digest, signer["signature"].native) != der:
            return None
        return template

    def to_sign(self, digest: bytes) -> bytes:
        """The bytes the signature covers: the signed attributes as a DER SET."""
        return tlv(SET, self.attrs_head + digest + self.attrs_tail)

    def build(self, digest: bytes, signature: bytes) -> bytes:
        """The whole ``ContentInfo`` for ``digest`` signed with ``signature``."""
        attrs = tlv(CONTEXT_0, self.attrs_head + digest + self.attrs_tail)
        signer = tlv(SEQUENCE, self.signer_head + attrs + self.signature_algorithm
                     + tlv(OCTET_STRING, signature))
        data = tlv(SEQUENCE, self.data_head + tlv(SET, signer))
        return tlv(SEQUENCE, self.content_type + tlv(CONTEXT_0, data))
