"""The ``envoi-BP-Generique`` envelope (schema v1.3.2): one ``assure`` entry per pay slip;
its ``nom_fichier`` names the package (see ``package``). ``content_errors`` adds the
checks Pastell's ENSAP connector makes beyond the schema (``XmlEnveloppeValidator``,
``PdfEnveloppeValidator``)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from lxml import etree

from schemas.xmlschemas import load_xsd, safe_parser, xsd_errors

XSD = Path(__file__).resolve().parents[2] / "schemas" / "xsd" / "ensap" / \
    "enveloppe_ENSAP_BPG_V1.3.2.xsd"
THEME_PAY = 8
SSTHEME_PAY_SLIP = 43
_NAME_OK = re.compile(r"[^A-Za-zÀ-ÖØ-öø-ÿŒœ \-']")
_SRE_PART = re.compile(r"[A-Za-z0-9_]{1,5}")  # patterns are matched whole (fullmatch)
_PDF_NAME = re.compile(r"[0-9]{13,15}_[0-9]{14}_BPaie_01[0-9]{2}[0-9]{4}\.pdf")


@dataclass(frozen=True)
class EnsapEntry:
    """What the envelope says about one pay slip (personal data: never logged)."""

    doc_id: str
    matricule: str
    nir: str  # 15 characters; the envelope carries the first 13
    birth_name: str
    birth_date: date
    employer_siret: str
    period_start: date
    net_amount_cents: int
    pdf_sha256: str
    pdf_size: int

    @property
    def nir13(self) -> str:
        return self.nir[:13]

    @property
    def sex(self) -> str:
        """1 (male) or 2 (female), from the NIR's first digit (3/7: 1, 4/8: 2)."""
        return "1" if self.nir[0] in "137" else "2"

    @property
    def file_name(self) -> str:
        """``NIR_SIRET_BPaie_DDMMYYYY.pdf``, the name ENSAP expects."""
        return f"{self.nir13}_{self.employer_siret}_BPaie_{self.period_start:%d%m%Y}.pdf"


@dataclass(frozen=True)
class Emitter:
    """The sending organisation as ENSAP knows it: ``code_emetteur`` (9 characters) in
    the envelope, the emitter name and code the SRE gave it (1-5 word characters each)
    in the package name."""

    code_emetteur: str
    code_cft: str = ""
    code_employeur: str | None = None
    sre_name: str = ""
    sre_code: str = ""

    def __post_init__(self) -> None:
        if len(self.code_emetteur) != 9:
            raise ValueError(f"ENSAP code_emetteur must have 9 characters, "
                             f"got {len(self.code_emetteur)}")
        for field, value in (("nom_emetteur_sre", self.sre_name),
                             ("code_emetteur_sre", self.sre_code)):
            if not _SRE_PART.fullmatch(value):
                raise ValueError(f"ENSAP {field} must be 1 to 5 letters, digits or '_', "
                                 f"got {value!r}")


def envelope_name(emitter: Emitter, period: date, at: datetime) -> str:
    """``nom_fichier`` of the message, also the package's name:
    ``ENVOI-PJ-BPG-43-<SRE name>-<SRE code>-<YYYYMM>-<DDMMYYhhmmss>`` (ENSAP's example)."""
    return f"ENVOI-PJ-BPG-{SSTHEME_PAY_SLIP}-{emitter.sre_name}-{emitter.sre_code}-" \
           f"{period:%Y%m}-{at:%d%m%y%H%M%S}"


def birth_name(value: str) -> str:
    """A name the schema accepts: letters (accented), spaces, '-' and "'"; upper case."""
    text = unicodedata.normalize("NFC", value).strip().upper()
    text = _NAME_OK.sub(" ", text)
    return " ".join(text.split())[:65] or "INCONNU"


def build_envelope(emitter: Emitter, entries: list[EnsapEntry],
                   at: datetime | None = None) -> bytes:
    """The envelope XML of a batch (UTF-8); numero_ordre follows ``entries``' order."""
    if not entries:
        raise ValueError("an ENSAP envelope needs at least one pay slip")
    at = at or datetime.now()
    root = etree.Element("envoi-BP-Generique")
    message = etree.SubElement(root, "message")
    _add(message, "version_fichier", "01.00")
    _add(message, "nature_flux", "ENVOI-BP-GENERIQUE")
    _add(message, "nom_fichier", envelope_name(emitter, entries[0].period_start, at))
    _add(message, "date_traitement", f"{at:%d%m%Y}")
    sender = etree.SubElement(root, "emetteur")
    _add(sender, "code_emetteur", emitter.code_emetteur)
    if emitter.code_employeur:
        _add(sender, "code_employeur", emitter.code_employeur)
    _add(sender, "code_CFT", emitter.code_cft)
    for order, entry in enumerate(entries, start=1):
        _assure(root, order, entry)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _assure(root: etree._Element, order: int, e: EnsapEntry) -> None:
    assure = etree.SubElement(root, "assure")
    _add(assure, "numero_dossier", e.matricule)
    _add(assure, "numero_ordre", str(order))
    _add(assure, "nir", e.nir13)
    _add(assure, "nom_naissance", birth_name(e.birth_name))
    _add(assure, "sexe", e.sex)
    _add(assure, "date_naissance", f"{e.birth_date:%d%m%Y}")
    _add(assure, "iban", "")
    _add(assure, "statut", "")
    _add(assure, "reference_emetteur", e.doc_id)
    manager = etree.SubElement(assure, "gestionnaire")
    _add(manager, "siret", e.employer_siret)
    doc = etree.SubElement(manager, "document")
    _add(doc, "theme", str(THEME_PAY))
    _add(doc, "sstheme", str(SSTHEME_PAY_SLIP))
    _add(doc, "date_document", f"{e.period_start:%d%m%Y}")
    _add(doc, "montant", str(e.net_amount_cents))
    _add(doc, "id_piece", "")
    _add(doc, "nom_fichier", e.file_name)
    _add(doc, "poids_fichier", str(e.pdf_size))


def _add(parent: etree._Element, tag: str, text: str) -> None:
    etree.SubElement(parent, tag).text = text


def schema() -> etree.XMLSchema:
    return load_xsd(XSD)


def schema_errors(xml: bytes) -> list[str]:
    """Why ``xml`` is not a valid envelope (empty when valid); lines, not values."""
    try:
        doc = etree.fromstring(xml, safe_parser())
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed: {exc}"]
    return [str(e) for e in xsd_errors(schema(), doc)]


def package_name(xml: bytes) -> str:
    """The envelope's ``message/nom_fichier`` (the package's name)."""
    doc = etree.fromstring(xml, safe_parser())
    return doc.findtext("message/nom_fichier", "").strip()


def content_errors(xml: bytes, files: list[str]) -> list[str]:
    """Checks beyond the schema (Pastell's ENSAP validators) on a schema-valid envelope,
    ``files`` being the names of the PDFs beside it; empty when all pass."""
    doc = etree.fromstring(xml, safe_parser())
    errors = []
    if not _is_date(doc.findtext("message/date_traitement", "")):
        errors.append('date_traitement: la date doit être au format "JJMMAAAA"')
    if len(doc.findtext("emetteur/code_emetteur", "")) != 9:
        errors.append("code_emetteur: le code émetteur doit contenir exactement 9 caractères")
    named: list[str] = []
    for assure in doc.iterfind("assure"):
        errors += _assure_errors(assure)
        named += [d.findtext("nom_fichier", "") for d in assure.iterfind("gestionnaire/document")]
    errors += [f"le fichier {n} est déjà référencé dans le XML"
               for n in sorted({n for n in named if named.count(n) > 1})]
    errors += [f"le fichier {n} n'est pas référencé dans le XML" for n in files if n not in named]
    errors += [f"le fichier {n} n'est pas dans le paquet" for n in named if n not in files]
    return errors


def _assure_errors(assure: etree._Element) -> list[str]:
    who = f"assure {assure.findtext('numero_dossier', '')}"
    errors = []
    if assure.findtext("sexe", "") not in ("1", "2"):
        errors.append(f"{who}: sexe invalide")
    if not _is_date(assure.findtext("date_naissance", "")):
        errors.append(f"{who}: date de naissance invalide")
    for manager in assure.iterfind("gestionnaire"):
        siret = manager.findtext("siret", "")
        if re.fullmatch(r"[0-9]{14}", siret) is None:
            errors.append(f"{who}: le SIRET doit contenir exactement 14 chiffres")
        for doc in manager.iterfind("document"):
            day = doc.findtext("date_document", "")
            if not _is_date(day) or not day.startswith("01"):
                errors.append(f"{who}: date_document doit être le premier du mois (JJMMAAAA)")
            if not _PDF_NAME.fullmatch(doc.findtext("nom_fichier", "")):
                errors.append(f'{who}: nom_fichier doit être "<NIR>_<SIRET>_BPaie_'
                              '<DATE_DOCUMENT>.pdf"')
    return errors


def _is_date(text: str) -> bool:
    try:
        return datetime.strptime(text, "%d%m%Y").strftime("%d%m%Y") == text
    except ValueError:
        return False


def entries_of(xml: bytes) -> list[dict[str, str]]:
    """Per ``assure``: numero_ordre, reference_emetteur, nom_fichier, poids_fichier."""
    doc = etree.fromstring(xml, safe_parser())
    return [{"numero_ordre": a.findtext("numero_ordre", ""),
             "reference_emetteur": a.findtext("reference_emetteur", ""),
             "nom_fichier": a.findtext("gestionnaire/document/nom_fichier", ""),
             "poids_fichier": a.findtext("gestionnaire/document/poids_fichier", "")}
            for a in doc.iterfind("assure")]
