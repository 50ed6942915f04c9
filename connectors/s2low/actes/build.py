"""Building the ACTES messages: the authority's (acte, envelope, annulation,
classification request, answers) and the prefecture's (used by the simulator and
tests: ARActe, anomalies, letters, classification)."""

from __future__ import annotations

import copy
from datetime import date
from typing import Literal

from lxml import etree

from connectors.s2low.actes.common import (
    _PARSER,
    INSEE_NS,
    XSI_NS,
    ActesError,
    _el,
    _file,
    _root,
    _serialize,
)
from schemas.acte import (
    ActeMetadata,
    ActeNature,
    Classification,
    ClassificationNature,
    TenantActesSettings,
)


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
