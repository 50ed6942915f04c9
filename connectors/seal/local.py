"""Local electronic seal (server signature): PAdES for PDF, XAdES for XML, CMS otherwise.

Connector type ``seal`` (role ``signature``). Options (all optional):

- key material, see ``connectors.seal.keys.load_identity`` (``pkcs12``/``pkcs12_base64``,
  ``key``/``cert``/``key_pem``/``cert_pem``, ``chain``, ``password``/``password_env``);
  without it the tenant gets a demo seal issued by the var directory's demo CA;
- ``tsa``: an RFC 3161 time-stamp authority URL (``sim:NAME`` accepted) whose token is
  embedded in every signature (PAdES B-T, CMS with a signature timestamp);
- ``xml``: ``xades`` (default, enveloped) or ``cms`` (detached);
- ``trust``: PEM files of extra roots used when verifying signed inputs.

Signer objects are built once per tenant and kept for the life of the process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree
from pyhanko.sign.timestamps import HTTPTimeStamper

from connectors.http import resolve_url
from connectors.seal.keys import SealConfigError, SealIdentity, demo_ca, load_identity
from connectors.seal.signers import Sealer, SealInputError, SealResult

__all__ = ["LocalSeal", "SealConfigError", "SealInputError", "SealResult", "pes_bordereau_ids",
           "signed_name"]

PDF = "application/pdf"
XML_TYPES = ("application/xml", "text/xml")
PES_ROOT = "PES_Aller"


@dataclass
class LocalSeal:
    """Seals files instantly with the tenant's key (``instant``: no partner to wait for)."""

    options: dict[str, Any] = field(repr=False)
    var_dir: Path
    instant: bool = True
    _sealers: dict[str, Sealer] = field(default_factory=dict, repr=False)

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> LocalSeal:
        xml_mode = options.get("xml", "xades")
        if xml_mode not in ("xades", "cms"):
            raise SealConfigError(f"seal option xml: {xml_mode!r} is not xades or cms")
        return cls(dict(options), var_dir)

    def sealer(self, tenant: str) -> Sealer:
        """The tenant's sealer (key loaded once per process)."""
        if tenant not in self._sealers:
            identity = load_identity(self.options, var_dir=self.var_dir, holder=tenant)
            self._sealers[tenant] = Sealer(identity, self._timestamper())
        return self._sealers[tenant]

    def identity(self, tenant: str) -> SealIdentity:
        return self.sealer(tenant).identity

    async def seal(self, tenant: str, data: bytes, media_type: str) -> SealResult:
        """Seal one file: PAdES for PDF, XAdES for XML (per bordereau for PES), else CMS."""
        sealer = self.sealer(tenant)
        if media_type == PDF:
            return await sealer.pades(data)
        if media_type in XML_TYPES and self.options.get("xml", "xades") == "xades":
            ids = pes_bordereau_ids(data)
            return sealer.xades_elements(data, ids) if ids else sealer.xades(data)
        return await sealer.cms_detached(data)

    def trust_roots(self, tenant: str) -> list[x509.Certificate]:
        """Roots to verify signed inputs with: the seal's chain top, extra roots, demo CA."""
        roots: list[x509.Certificate] = []
        for path in self.options.get("trust") or []:
            roots += x509.load_pem_x509_certificates(Path(path).read_bytes())
        identity = self.identity(tenant)
        if identity.chain:
            roots.append(identity.chain[-1])
        if identity.demo:
            roots.append(demo_ca(self.var_dir).cert)
        return list({c.fingerprint(c.signature_hash_algorithm or _sha256()): c
                     for c in roots}.values())

    def _timestamper(self) -> Any:
        url = self.options.get("tsa")
        if not url:
            return None


        return HTTPTimeStamper(resolve_url(str(url), self.var_dir), timeout=10)


def _sha256() -> Any:
    return hashes.SHA256()


def pes_bordereau_ids(xml: bytes) -> list[str]:
    """The ``Id`` of every ``Bordereau`` of a PES Aller file (empty for other XML)."""
    if PES_ROOT.encode() not in xml[:4096]:
        return []
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return []
    if etree.QName(root).localname != PES_ROOT:
        return []
    return [b.get("Id") for b in root.iter("Bordereau") if b.get("Id")]


def signed_name(name: str, result: SealResult) -> str:
    """File name of the sealed artefact: ``x.pdf`` -> ``x-signed.pdf``, CMS -> ``x.p7s``."""
    if result.detached:
        return f"{name}.p7s"
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-signed.{ext}" if dot else f"{name}-signed"
