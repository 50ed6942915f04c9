"""Reading ACTES messages: every message kind as a typed model, and the files a
message refers to."""

from __future__ import annotations

import datetime as dt
from datetime import date
from typing import Annotated, Any, Literal

from lxml import etree
from pydantic import BaseModel, Field, TypeAdapter

from connectors.s2low.actes.build import (
    REPLY_MESSAGE,
)
from connectors.s2low.actes.common import (
    INSEE_NS,
    NS,
    ActesError,
    _q,
    assert_valid,
)
from schemas.acte import (
    ActeNature,
    Classification,
)
from schemas.safexml import XmlRefused, parse_xml


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
        root = parse_xml(xml, what="ACTES message", remove_blank_text=True)
    except XmlRefused as exc:
        raise ActesError(str(exc)) from exc
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
