"""ACTES v1.1 message layer: build, name, package, verify and parse the XML messages
exchanged with the prefecture through S²LOW.

File names follow the ministry's convention, as S²LOW produces them::

    [TYPO-]DDD-SIREN-YYYYMMDD-NUMBER-NATURE-M-T_N.ext

``M-T`` is the message (1-1 transmission, 1-2 ARActe, 6-1 annulation, ...), ``N`` the
serial inside the message (0 = the XML form, 1 = the main document, 2.. = annexes),
``TYPO-`` the document's typology code (``99_DE-``...) when there is one. The envelope
is ``EACT--SIREN--YYYYMMDD-S.xml`` and the archive ``SLO-EACT--SIREN--YYYYMMDD-S.tar.gz``
(platform trigram, then the envelope's name): a gzipped tar of the envelope, the forms
and the documents, flat.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import io
import re
import tarfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from lxml import etree
from pydantic import BaseModel, Field, TypeAdapter

import schemas
from schemas.acte import (
    ACTES_NS,
    NATURE_CODES,
    ActeMetadata,
    ActeNature,
    Classification,
    ClassificationNature,
    TenantActesSettings,
)
from schemas.xmlschemas import schema_loader

NS = ACTES_NS
INSEE_NS = "http://xml.insee.fr/schema"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {"actes": NS, "insee": INSEE_NS, "xsi": XSI_NS}
SCHEMA_PATH = Path(schemas.__file__).resolve().parent / "xsd" / "actes" / "actesv1_1.xsd"
TRIGRAMME = "SLO"
QUADRIGRAMME = "EACT"
ID_ACTE_RE = re.compile(r"^[09][0-9][0-9AB]-[0-9]{9}-[0-9]{8}-[a-zA-Z0-9_]{1,15}-[A-Z]{2}$")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)

# message codes (M-T) of the file names
MSG_TRANSMISSION, MSG_ARACTE, MSG_ANOMALIE = "1-1", "1-2", "1-3"
MSG_ANNULATION, MSG_ARANNULATION, MSG_DEMANDE_CLASSIF = "6-1", "6-2", "7-1"


class ActesError(ValueError):
    """An ACTES message or archive is malformed or invalid against the schema."""


# ---------------------------------------------------------------- schema


@schema_loader
def actes_schema() -> etree.XMLSchema:
    """The official ACTES v1.1 schema, from the package's own copy."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), etree.XMLParser(no_network=True)))


def schema_errors(xml: bytes) -> list[str]:
    """Schema violations of ``xml`` (empty when valid)."""
    try:
        doc = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed: {exc}"]
    schema = actes_schema()
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def assert_valid(xml: bytes, what: str = "message") -> bytes:
    """Return ``xml`` or raise ``ActesError`` naming the first violation."""
    errors = schema_errors(xml)
    if errors:
        raise ActesError(f"{what} is not valid ACTES v1.1: {errors[0]}")
    return xml


# ---------------------------------------------------------------- naming


def official_id(departement: str, siren: str, decision_date: date, number: str,
                nature: ActeNature | int) -> str:
    """The ID the prefecture gives an acte: ``DDD-SIREN-YYYYMMDD-NUMBER-NATURE``."""
    return (f"{departement}-{siren}-{decision_date:%Y%m%d}-{number}-"
            f"{NATURE_CODES[ActeNature(nature)]}")


def acte_base(settings: TenantActesSettings, meta: ActeMetadata) -> str:
    """Stem shared by every file of an acte's messages (equal to its official ID)."""
    return official_id(settings.departement, settings.siren, meta.decision_date, meta.number,
                       meta.nature)


def message_file_name(base: str, message: str, serial: int, ext: str,
                      typology: str | None = None) -> str:
    """``[TYPO-]BASE-M-T_N.ext``."""
    prefix = f"{typology}-" if typology else ""
    return f"{prefix}{base}-{message}_{serial}.{ext.lstrip('.')}"


def envelope_file_name(siren: str, day: date, serial: int, quadrigramme: str = QUADRIGRAMME
                       ) -> str:
    return f"{quadrigramme}--{siren}--{day:%Y%m%d}-{serial}.xml"


def archive_file_name(envelope_name: str, trigramme: str = TRIGRAMME) -> str:
    return f"{trigramme}-{envelope_name.removesuffix('.xml')}.tar.gz"


# ---------------------------------------------------------------- building


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _el(parent: etree._Element | None, name: str, text: str | None = None,
        **attrs: Any) -> etree._Element:
    """A child ``actes:name`` with ``actes:``-qualified attributes (as the schema wants)."""
    attributes = {(_q(k) if ":" not in k and not k.startswith("{") else k): str(v)
                  for k, v in attrs.items()}
    el = (etree.Element(_q(name), attributes, nsmap=NSMAP) if parent is None
          else etree.SubElement(parent, _q(name), attributes))
    if text is not None:
        el.text = text
    return el


def _root(name: str, **attrs: Any) -> etree._Element:
    root = _el(None, name, **attrs)
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{NS} actesv1_1.xsd")
    return root


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1", pretty_print=True)


def _file(parent: etree._Element, name: str, file_name: str, signature: str | None = None
          ) -> None:
    el = _el(parent, name)
    _el(el, "NomFichier", file_name)
    if signature:
        _el(el, "Signature", signature)


def _fill_acte(el: etree._Element, meta: ActeMetadata, document_name: str,
               annexe_names: list[str], previous_id: str | None = None) -> None:
    for i, level in enumerate(meta.classification_levels, start=1):
        _el(el, f"CodeMatiere{i}", CodeMatiere=level)
    _el(el, "Objet", meta.subject)
    if previous_id:
        _el(el, "PrecedentIdentifiantActe", IDActe=previous_id)
    _el(el, "ClassificationDateVersion", meta.classification_date.isoformat())
    _file(el, "Document", document_name)
    annexes = _el(el, "Annexes", Nombre=len(annexe_names))
    for name in annexe_names:
        _file(annexes, "Annexe", name)
    _el(el, "DocumentPapier", "O" if meta.document_papier else "N")


def build_acte(meta: ActeMetadata, document_name: str, annexe_names: list[str],
               previous_id: str | None = None) -> bytes:
    """The ``Acte`` form (message 1-1)."""
    root = _root("Acte", Date=meta.decision_date.isoformat(), NumeroInterne=meta.number,
                 CodeNatureActe=int(meta.nature))
    _fill_acte(root, meta, document_name, annexe_names, previous_id)
    return _serialize(root)


def build_envelope(settings: TenantActesSettings, form_names: list[str]) -> bytes:
    """The ``EnveloppeCLMISILL`` listing ``form_names``."""
    root = _root("EnveloppeCLMISILL")
    sender = _el(root, "Emetteur")
    _el(sender, "IDCL", **{f"{{{INSEE_NS}}}SIREN": settings.siren,
                           "Departement": settings.departement,
                           "Arrondissement": settings.arrondissement,
                           "Nature": settings.nature_autorite})
    ref = settings.referent
    referent = _el(sender, "Referent")
    _el(referent, "Nom", ref.name)
    _el(referent, "Telephone", ref.phone)
    if ref.email:
        _el(referent, "Email", ref.email)
    addresses = _el(root, "AdressesRetour")
    for email in dict.fromkeys(settings.return_emails):
        _el(addresses, "Email", email)
    forms = _el(root, "FormulairesEnvoyes")
    for name in form_names:
        _file(forms, "Formulaire", name)
    return _serialize(root)


def build_annulation(id_acte: str) -> bytes:
    """The ``Annulation`` form (message 6-1) cancelling an acknowledged acte."""
    return _serialize(_root("Annulation", IDActe=id_acte))


def build_demande_classification(current: date | None = None) -> bytes:
    """``DemandeClassification`` (message 7-1)."""
    root = _root("DemandeClassification")
    if current:
        _el(root, "DateClassification", current.isoformat())
    return _serialize(root)


ReplyKind = Literal["ReponseCourrierSimple", "PieceComplementaire", "RefusPieceComplementaire",
                    "ReponseLettreObservations", "RejetLettreObservations"]
REPLY_FOR: dict[str, tuple[ReplyKind, ...]] = {
    "CourrierSimple": ("ReponseCourrierSimple",),
    "DemandePieceComplementaire": ("PieceComplementaire", "RefusPieceComplementaire"),
    "LettreObservations": ("ReponseLettreObservations", "RejetLettreObservations"),
}
# message code of an answer, as S²LOW names it: letter type, then 2 (simple), 3 refusal, 4 send
REPLY_MESSAGE: dict[str, str] = {
    "ReponseCourrierSimple": "2-2", "RefusPieceComplementaire": "3-3",
    "PieceComplementaire": "3-4", "RejetLettreObservations": "4-3",
    "ReponseLettreObservations": "4-4",
}


def build_reponse(kind: ReplyKind, id_acte: str, date_courrier: date,
                  document_names: list[str]) -> bytes:
    """The authority's answer to a prefecture letter."""
    if not document_names:
        raise ActesError(f"{kind} needs at least one document")
    root = _root(kind, IDActe=id_acte, DateCourrierPref=date_courrier.isoformat())
    if kind == "PieceComplementaire":
        docs = _el(root, "Documents")
        for name in document_names:
            _file(docs, "Document", name)
    else:
        _file(root, "Document", document_names[0])
    return _serialize(root)


# --- prefecture side (used by the simulator; also handy in tests)


def _acte_recu(parent: etree._Element, acte_form: bytes) -> None:
    src = etree.fromstring(acte_form, _PARSER)
    recu = _el(parent, "ActeRecu")
    for key, value in src.attrib.items():
        if not key.startswith(f"{{{XSI_NS}}}"):
            recu.set(key, value)
    for child in src:
        recu.append(copy.deepcopy(child))


def build_aracte(acte_form: bytes, id_acte: str, received: date, classification_date: date
                 ) -> bytes:
    """``ARActe`` (message 1-2) acknowledging the ``Acte`` form ``acte_form``."""
    root = _el(None, "ARActe", IDActe=id_acte, DateReception=received.isoformat())
    _acte_recu(root, acte_form)
    _el(root, "ClassificationDateVersionEnCours", classification_date.isoformat())
    return _serialize(root)


def build_anomalie_acte(acte_form: bytes, on: date, nature: str, detail: str,
                        classification_date: date) -> bytes:
    """``AnomalieActe`` (message 1-3): the prefecture could not accept the acte."""
    root = _el(None, "AnomalieActe")
    _el(root, "Date", on.isoformat())
    _el(root, "Nature", nature)
    _el(root, "Detail", detail)
    _acte_recu(root, acte_form)
    _el(root, "ClassificationDateVersionEnCours", classification_date.isoformat())
    return _serialize(root)


def build_ar_annulation(id_acte: str, received: date) -> bytes:
    return _serialize(_el(None, "ARAnnulation", IDActe=id_acte,
                          DateReception=received.isoformat()))


def build_courrier(kind: str, id_acte: str, on: date, document_name: str, text: str = ""
                   ) -> bytes:
    """A prefecture letter: CourrierSimple, DemandePieceComplementaire or LettreObservations."""
    root = _el(None, kind, IDActe=id_acte, DateCourrierPref=on.isoformat())
    if kind == "DemandePieceComplementaire":
        _el(root, "DescriptionPieces", text)
    elif kind == "LettreObservations":
        _el(root, "Motif", text)
    _file(root, "Document", document_name)
    return _serialize(root)


def build_defere(id_acte: str, on: date, reason: str, pieces: list[str]) -> bytes:
    root = _el(None, "DefereTA", IDActe=id_acte)
    _el(root, "DateDepot", on.isoformat())
    _el(root, "NatureIllegalite", reason)
    holder = _el(root, "PiecesJointes")
    for name in pieces:
        _file(holder, "PieceJointe", name)
    return _serialize(root)


def build_ar_courrier(kind: str, id_acte: str, date_courrier: date,
                      received: date | None = None) -> bytes:
    """ARDemandePieceComplementaire / ARLettreObservations (no ``received``) or
    ARPieceComplementaire / ARReponseRejetLettreObservations (with it)."""
    if received is None:
        return _serialize(_el(None, kind, IDActe=id_acte,
                              DateCourrierPref=date_courrier.isoformat()))
    root = _el(None, kind, DateReception=received.isoformat())
    _el(root, "InfosCourrierPref", IDActe=id_acte, DateCourrierPref=date_courrier.isoformat())
    return _serialize(root)


def build_retour_classification(classification: Classification) -> bytes:
    """``RetourClassification`` (message 7-2) from a ``Classification``."""
    root = _el(None, "RetourClassification")
    _el(root, "DateClassification", classification.version_date.isoformat())
    natures = _el(root, "NaturesActes")
    for nature in classification.natures or [
            ClassificationNature(code=int(n), label=n.name.title(), short=n.code,
                                 typologies={n.default_typology: "Acte"}) for n in ActeNature]:
        el = _el(natures, "NatureActe", CodeNatureActe=nature.code, Libelle=nature.label,
                 TypeAbrege=nature.short)
        for code, label in (nature.typologies or {"99_AU": "Autre document"}).items():
            _el(el, "TypePJNatureActe", CodeTypePJ=code, Libelle=label)
    subjects = _el(root, "Matieres")
    nodes: dict[str, etree._Element] = {}
    for code in sorted(classification.subjects, key=lambda c: [int(p) for p in c.split(".")]):
        parts = code.split(".")
        parent = subjects if len(parts) == 1 else nodes[".".join(parts[:-1])]
        nodes[code] = _el(parent, f"Matiere{len(parts)}", CodeMatiere=parts[-1],
                          Libelle=classification.subjects[code])
    return _serialize(root)


def build_envelope_misillcl(departement: str, arrondissement: int, siren: str,
                            form_names: list[str]) -> bytes:
    """Envelope of a prefecture -> authority message."""
    root = _el(None, "EnveloppeMISILLCL")
    sender = _el(root, "Emetteur")
    if arrondissement:
        _el(sender, "IDSousPref", Departement=departement, Arrondissement=arrondissement)
    else:
        _el(sender, "IDPref", Departement=departement)
    forms = _el(root, "FormulairesEnvoyes")
    for name in form_names:
        _file(forms, "Formulaire", name)
    _el(root, "Destinataire", **{f"{{{INSEE_NS}}}SIREN": siren})
    return _serialize(root)


# ---------------------------------------------------------------- archives


class ArchiveFile(BaseModel):
    """A file of an archive: its ACTES name and content."""

    name: str
    data: bytes


class ActesArchive(BaseModel):
    """A ready-to-send ``.tar.gz`` and what is in it."""

    name: str
    data: bytes
    envelope_name: str
    form_name: str
    file_names: list[str]
    official_id: str | None = None


def pack(files: Iterable[ArchiveFile]) -> bytes:
    """A gzipped tar of ``files``, flat, with fixed times (same input, same bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for f in files:
            info = tarfile.TarInfo(f.name)
            info.size, info.mode, info.mtime = len(f.data), 0o644, 0
            tar.addfile(info, io.BytesIO(f.data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def unpack(data: bytes, max_files: int = 1000) -> dict[str, bytes]:
    """Files of a ``.tar.gz`` by name; raises ``ActesError`` on anything but flat files."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
            if len(members) > max_files:
                raise ActesError(f"archive holds too many files ({len(members)})")
            out = {}
            for m in members:
                if not m.isfile() or "/" in m.name or m.name.startswith((".", "-")):
                    raise ActesError(f"archive entry not allowed: {m.name!r}")
                out[m.name] = tar.extractfile(m).read()  # type: ignore[union-attr]
            return out
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ActesError(f"bad archive format (.tar.gz required): {exc}") from exc


def build_message_archive(settings: TenantActesSettings, form_name: str, form: bytes,
                          documents: list[ArchiveFile], *, serial: int, sent_on: date,
                          trigramme: str = TRIGRAMME) -> ActesArchive:
    """Envelope + one form + its documents, validated, packed."""
    assert_valid(form, form_name)
    env_name = envelope_file_name(settings.siren, sent_on, serial)
    envelope = assert_valid(build_envelope(settings, [form_name]), env_name)
    files = [ArchiveFile(name=env_name, data=envelope), ArchiveFile(name=form_name, data=form),
             *documents]
    return ActesArchive(name=archive_file_name(env_name, trigramme), data=pack(files),
                        envelope_name=env_name, form_name=form_name,
                        file_names=[f.name for f in files])


def acte_documents(settings: TenantActesSettings, meta: ActeMetadata, pdf: bytes,
                   annexes: list[bytes], typology_prefix: bool = True) -> list[ArchiveFile]:
    """The main document then the annexes, named as in the transmission (serial 1, 2...)."""
    if len(annexes) != len(meta.annexes):
        raise ActesError(f"annexes: {len(meta.annexes)} described, {len(annexes)} given")
    base = acte_base(settings, meta)
    docs = [ArchiveFile(name=message_file_name(
        base, MSG_TRANSMISSION, 1, "pdf", meta.main_typology if typology_prefix else None),
        data=pdf)]
    for i, (entry, data) in enumerate(zip(meta.annexes, annexes, strict=True), start=2):
        ext = Path(entry.file_name).suffix.lstrip(".").lower() or "pdf"
        docs.append(ArchiveFile(name=message_file_name(
            base, MSG_TRANSMISSION, i, ext, entry.typology if typology_prefix else None),
            data=data))
    return docs


def build_acte_archive(settings: TenantActesSettings, meta: ActeMetadata, pdf: bytes,
                       annexes: list[bytes] | None = None, *, serial: int = 1,
                       sent_on: date | None = None, trigramme: str = TRIGRAMME,
                       typology_prefix: bool = True) -> ActesArchive:
    """The transmission of an acte (message 1-1) as the archive S²LOW sends on."""
    if not pdf.startswith(b"%PDF"):
        raise ActesError("the main document must be a PDF")
    docs = acte_documents(settings, meta, pdf, annexes or [], typology_prefix)
    base = acte_base(settings, meta)
    form_name = message_file_name(base, MSG_TRANSMISSION, 0, "xml")
    form = build_acte(meta, docs[0].name, [d.name for d in docs[1:]])
    archive = build_message_archive(settings, form_name, form, docs, serial=serial,
                                    sent_on=sent_on or date.today(), trigramme=trigramme)
    archive.official_id = base
    return archive


class VerifiedArchive(BaseModel):
    """An archive that passed ``verify_archive``."""

    envelope: EnveloppeCLMISILL
    forms: dict[str, bytes]
    files: dict[str, bytes]


def verify_archive(name: str, data: bytes, *, trigramme: str = TRIGRAMME,
                   quadrigramme: str = QUADRIGRAMME) -> VerifiedArchive:
    """Check name, format, schema validity and completeness as the platform does."""
    parts = name.split("-")
    if len(parts) < 2 or not name.endswith(".tar.gz"):
        raise ActesError(f"archive name is not correct: {name!r}")
    if parts[0] != trigramme or parts[1] != quadrigramme:
        raise ActesError(f"archive name must start with {trigramme}-{quadrigramme}-: {name!r}")
    files = unpack(data)
    env_name = name.removeprefix(f"{trigramme}-").removesuffix(".tar.gz") + ".xml"
    if env_name not in files:
        raise ActesError(f"envelope {env_name} missing from the archive")
    envelope = parse_message(assert_valid(files[env_name], env_name))
    if not isinstance(envelope, EnveloppeCLMISILL):
        raise ActesError(f"{env_name} is a {envelope.kind}, not an EnveloppeCLMISILL")
    forms = {}
    for form_name in envelope.forms:
        if form_name not in files:
            raise ActesError(f"form {form_name} listed in the envelope is missing")
        forms[form_name] = assert_valid(files[form_name], form_name)
        for ref in referenced_files(parse_message(forms[form_name])):
            if ref not in files:
                raise ActesError(f"{ref} referenced by {form_name} is missing")
    return VerifiedArchive(envelope=envelope, forms=forms, files=files)


# ---------------------------------------------------------------- parsing


class ActeRecu(BaseModel):
    """The acte as the prefecture received it (``DonneesActe``)."""

    decision_date: date
    number: str
    nature: ActeNature
    classification: str
    subject: str
    classification_date: date
    previous_id: str | None = None
    document: str
    annexes: list[str] = Field(default_factory=list)
    document_papier: bool = False


class _Msg(BaseModel):
    kind: str


class ARActe(_Msg):
    """Acknowledgement: the acte is received; ``id_acte`` is its official ID."""

    kind: Literal["ARActe"] = "ARActe"
    id_acte: str
    date_reception: date
    acte: ActeRecu
    classification_date_current: date


class AnomalieActe(_Msg):
    """The prefecture rejected the transmission; ``reason`` says why."""

    kind: Literal["AnomalieActe"] = "AnomalieActe"
    date: dt.date
    nature: str
    detail: str = ""
    acte: ActeRecu
    classification_date_current: date

    @property
    def reason(self) -> str:
        return f"anomaly {self.nature}: {self.detail}".rstrip(": ")


class AnomalieEnveloppe(_Msg):
    kind: Literal["AnomalieEnveloppe"] = "AnomalieEnveloppe"
    date: dt.date
    nature: str
    detail: str = ""


class ARAnnulation(_Msg):
    kind: Literal["ARAnnulation"] = "ARAnnulation"
    id_acte: str
    date_reception: date


class Annulation(_Msg):
    kind: Literal["Annulation"] = "Annulation"
    id_acte: str


class _Courrier(_Msg):
    """Fields of every message about a prefecture letter (``DonneesCourrierPref``)."""

    id_acte: str
    date_courrier: date


class CourrierSimple(_Courrier):
    kind: Literal["CourrierSimple"] = "CourrierSimple"
    document: str


class DemandePieceComplementaire(_Courrier):
    kind: Literal["DemandePieceComplementaire"] = "DemandePieceComplementaire"
    description: str
    document: str


class LettreObservations(_Courrier):
    kind: Literal["LettreObservations"] = "LettreObservations"
    motif: str
    document: str


class ARDemandePieceComplementaire(_Courrier):
    kind: Literal["ARDemandePieceComplementaire"] = "ARDemandePieceComplementaire"


class ARLettreObservations(_Courrier):
    kind: Literal["ARLettreObservations"] = "ARLettreObservations"


class ReponseCourrier(_Courrier):
    """An authority's answer (ReponseCourrierSimple, PieceComplementaire, Refus..., ...)."""

    kind: Literal["ReponseCourrierSimple", "PieceComplementaire", "RefusPieceComplementaire",
                  "ReponseLettreObservations", "RejetLettreObservations"]
    documents: list[str]


class ARReponse(_Courrier):
    """Acknowledgement of the authority's answer to a letter."""

    kind: Literal["ARPieceComplementaire", "ARReponseRejetLettreObservations"]
    date_reception: date


class DefereTA(_Msg):
    """The prefect referred the acte to the administrative court."""

    kind: Literal["DefereTA"] = "DefereTA"
    id_acte: str
    date_depot: date
    nature_illegalite: str
    pieces: list[str] = Field(default_factory=list)


class ReponseClassificationSansChangement(_Msg):
    kind: Literal["ReponseClassificationSansChangement"] = "ReponseClassificationSansChangement"
    date: dt.date


class RetourClassification(_Msg):
    kind: Literal["RetourClassification"] = "RetourClassification"
    classification: Classification


class DemandeClassification(_Msg):
    kind: Literal["DemandeClassification"] = "DemandeClassification"
    date: dt.date | None = None


class ActeForm(_Msg):
    """The ``Acte`` form itself (what the authority sent)."""

    kind: Literal["Acte"] = "Acte"
    acte: ActeRecu


class EnveloppeCLMISILL(_Msg):
    kind: Literal["EnveloppeCLMISILL"] = "EnveloppeCLMISILL"
    siren: str
    departement: str
    arrondissement: int
    nature_autorite: str
    return_emails: list[str]
    forms: list[str]


class EnveloppeMISILLCL(_Msg):
    kind: Literal["EnveloppeMISILLCL"] = "EnveloppeMISILLCL"
    departement: str
    arrondissement: int | None = None
    siren: str
    forms: list[str]


ActesMessage = Annotated[
    ARActe | AnomalieActe | AnomalieEnveloppe | ARAnnulation | Annulation | CourrierSimple
    | DemandePieceComplementaire | LettreObservations | ARDemandePieceComplementaire
    | ARLettreObservations | ReponseCourrier | ARReponse | DefereTA
    | ReponseClassificationSansChangement | RetourClassification | DemandeClassification
    | ActeForm | EnveloppeCLMISILL | EnveloppeMISILLCL,
    Field(discriminator="kind")]
PREFECTURE_LETTERS = ("CourrierSimple", "DemandePieceComplementaire", "LettreObservations",
                      "DefereTA")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ActesMessage)


def _a(el: etree._Element, name: str) -> str:
    return el.get(_q(name)) or el.get(name) or ""


def _t(el: etree._Element, path: str) -> str:
    return el.findtext(path, "", {"a": NS}).strip()


def _names(el: etree._Element, path: str) -> list[str]:
    return [n.text.strip() for n in el.iterfind(path, {"a": NS}) if n.text]


def _acte_fields(el: etree._Element) -> dict[str, Any]:
    levels = [_a(c, "CodeMatiere") for i in range(1, 6)
              for c in el.iterfind(f"a:CodeMatiere{i}", {"a": NS})]
    prev = el.find("a:PrecedentIdentifiantActe", {"a": NS})
    return {"decision_date": _a(el, "Date"), "number": _a(el, "NumeroInterne"),
            "nature": int(_a(el, "CodeNatureActe")), "classification": ".".join(levels),
            "subject": _t(el, "a:Objet"),
            "classification_date": _t(el, "a:ClassificationDateVersion"),
            "previous_id": _a(prev, "IDActe") if prev is not None else None,
            "document": _t(el, "a:Document/a:NomFichier"),
            "annexes": _names(el, "a:Annexes/a:Annexe/a:NomFichier"),
            "document_papier": _t(el, "a:DocumentPapier").upper() in ("O", "OUI", "1")}


def _courrier(el: etree._Element) -> dict[str, Any]:
    return {"id_acte": _a(el, "IDActe"), "date_courrier": _a(el, "DateCourrierPref")}


def _fields(kind: str, el: etree._Element, xml: bytes) -> dict[str, Any]:
    if kind == "ARActe":
        return {"id_acte": _a(el, "IDActe"), "date_reception": _a(el, "DateReception"),
                "acte": _acte_fields(el.find("a:ActeRecu", {"a": NS})),
                "classification_date_current": _t(el, "a:ClassificationDateVersionEnCours")}
    if kind == "AnomalieActe":
        return {"date": _t(el, "a:Date"), "nature": _t(el, "a:Nature"),
                "detail": _t(el, "a:Detail"),
                "acte": _acte_fields(el.find("a:ActeRecu", {"a": NS})),
                "classification_date_current": _t(el, "a:ClassificationDateVersionEnCours")}
    if kind == "AnomalieEnveloppe":
        return {"date": _t(el, "a:Date"), "nature": _t(el, "a:Nature"),
                "detail": _t(el, "a:Detail")}
    if kind in ("ARAnnulation", "Annulation"):
        return {"id_acte": _a(el, "IDActe"), "date_reception": _a(el, "DateReception")}
    if kind == "Acte":
        return {"acte": _acte_fields(el)}
    return _other_fields(kind, el, xml)


def _other_fields(kind: str, el: etree._Element, xml: bytes) -> dict[str, Any]:
    if kind in ("CourrierSimple", "DemandePieceComplementaire", "LettreObservations"):
        return {**_courrier(el), "document": _t(el, "a:Document/a:NomFichier"),
                "description": _t(el, "a:DescriptionPieces"), "motif": _t(el, "a:Motif")}
    if kind in ("ARDemandePieceComplementaire", "ARLettreObservations"):
        return _courrier(el)
    if kind in REPLY_MESSAGE:
        return {**_courrier(el), "documents": _names(el, ".//a:Document/a:NomFichier")}
    if kind in ("ARPieceComplementaire", "ARReponseRejetLettreObservations"):
        return {**_courrier(el.find("a:InfosCourrierPref", {"a": NS})),
                "date_reception": _a(el, "DateReception")}
    if kind == "DefereTA":
        return {"id_acte": _a(el, "IDActe"), "date_depot": _t(el, "a:DateDepot"),
                "nature_illegalite": _t(el, "a:NatureIllegalite"),
                "pieces": _names(el, "a:PiecesJointes/a:PieceJointe/a:NomFichier")}
    if kind in ("ReponseClassificationSansChangement", "DemandeClassification"):
        return {"date": _t(el, "a:DateClassification") or None}
    if kind == "RetourClassification":
        return {"classification": Classification.from_xml(xml)}
    return _envelope_fields(kind, el)


def _envelope_fields(kind: str, el: etree._Element) -> dict[str, Any]:
    forms = _names(el, "a:FormulairesEnvoyes/a:Formulaire/a:NomFichier")
    if kind == "EnveloppeCLMISILL":
        idcl = el.find("a:Emetteur/a:IDCL", {"a": NS})
        return {"siren": idcl.get(f"{{{INSEE_NS}}}SIREN", ""),
                "departement": _a(idcl, "Departement"),
                "arrondissement": _a(idcl, "Arrondissement"),
                "nature_autorite": _a(idcl, "Nature"),
                "return_emails": _names(el, "a:AdressesRetour/a:Email"), "forms": forms}
    if kind == "EnveloppeMISILLCL":
        sender = el.find("a:Emetteur", {"a": NS})[0]
        dest = el.find("a:Destinataire", {"a": NS})
        return {"departement": _a(sender, "Departement"),
                "arrondissement": _a(sender, "Arrondissement") or None,
                "siren": dest.get(f"{{{INSEE_NS}}}SIREN", ""), "forms": forms}
    raise ActesError(f"unknown ACTES message {kind}")


def parse_message(xml: bytes, *, validate: bool = True) -> Any:
    """Parse any ACTES v1.1 message into its typed model (see ``ActesMessage``)."""
    if validate:
        assert_valid(xml)
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ActesError(f"not well-formed: {exc}") from exc
    qname = etree.QName(root)
    if qname.namespace != NS:
        raise ActesError(f"not an ACTES message: {{{qname.namespace}}}{qname.localname}")
    kind = qname.localname
    try:
        return _ADAPTER.validate_python({"kind": kind, **_fields(kind, root, xml)})
    except ValueError as exc:
        raise ActesError(f"cannot read {kind}: {exc}") from exc


def referenced_files(message: Any) -> list[str]:
    """Names of the documents a form refers to."""
    if isinstance(message, ActeForm):
        return [message.acte.document, *message.acte.annexes]
    if isinstance(message, ReponseCourrier):
        return list(message.documents)
    if isinstance(message, CourrierSimple | DemandePieceComplementaire | LettreObservations):
        return [message.document]
    if isinstance(message, DefereTA):
        return list(message.pieces)
    return []


VerifiedArchive.model_rebuild()
