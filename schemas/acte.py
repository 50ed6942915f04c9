"""Metadata of an acte sent to legality control (ACTES protocol v1.1), tenant settings
and the prefecture's classification (``RetourClassification``)."""

from __future__ import annotations

import re
from datetime import date
from enum import IntEnum
from typing import Annotated, Any, Literal

from lxml import etree
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.metadata import registers
from schemas.safexml import parse_xml
from schemas.siren import Siren
from schemas.text import FileName, MultiLine, SingleLine, ascii_digits, check_pattern

ACTES_NS = "http://www.interieur.gouv.fr/ACTES#v1.1-20040216"

# Same pattern as the ACTES schema's Email type.
EMAIL_RE = re.compile(r"[_a-zA-Z0-9\-]+(\.[_a-zA-Z0-9\-]+)*@[a-zA-Z0-9\-]+"
                      r"(\.[a-zA-Z0-9\-]+)*\.[a-zA-Z]{2,6}")
# S²LOW's own rule: [A-Z0-9_]{1,15}, neither starting nor ending with "_".
NUMBER_RE = re.compile(r"([A-Z0-9][A-Z0-9_]{0,13})?[A-Z0-9]")  # matched whole (fullmatch)
TYPOLOGY_RE = re.compile(r"[0-9]{2}_[A-Z0-9]{2}")
SUBJECT_MAX = 500  # xsd: Objet maxLength


class ActeNature(IntEnum):
    """``CodeNatureActe``; ``.code`` is the two-letter form used in file names and IDs."""

    DELIBERATION = 1
    ARRETE_REGLEMENTAIRE = 2
    ARRETE_INDIVIDUEL = 3
    CONTRAT_CONVENTION = 4
    DOCUMENT_BUDGETAIRE = 5
    AUTRE = 6

    @property
    def code(self) -> str:
        return NATURE_CODES[self]

    @property
    def default_typology(self) -> str:
        """Typology S²LOW uses for the main document when none is given."""
        return DEFAULT_TYPOLOGY[self]

    @classmethod
    def parse(cls, value: Any) -> ActeNature:
        """Accept 1..6, "1".."6" or the codes DE, AR, AI, CC, BF, AU."""
        if isinstance(value, str) and not ascii_digits(value.strip()):
            code = value.strip().upper()
            for nature, known in NATURE_CODES.items():
                if known == code:
                    return nature
            raise ValueError(f"unknown nature code {value!r} (expected one of "
                             f"{', '.join(NATURE_CODES.values())} or 1..6)")
        try:
            return cls(int(value))
        except (TypeError, ValueError):
            raise ValueError(f"nature must be 1..6 or a code like 'DE', got {value!r}") from None


NATURE_CODES: dict[ActeNature, str] = {
    ActeNature.DELIBERATION: "DE", ActeNature.ARRETE_REGLEMENTAIRE: "AR",
    ActeNature.ARRETE_INDIVIDUEL: "AI", ActeNature.CONTRAT_CONVENTION: "CC",
    ActeNature.DOCUMENT_BUDGETAIRE: "BF", ActeNature.AUTRE: "AU",
}
DEFAULT_TYPOLOGY: dict[ActeNature, str] = {
    ActeNature.DELIBERATION: "99_DE", ActeNature.ARRETE_REGLEMENTAIRE: "99_AR",
    ActeNature.ARRETE_INDIVIDUEL: "99_AI", ActeNature.CONTRAT_CONVENTION: "99_DC",
    ActeNature.DOCUMENT_BUDGETAIRE: "99_BU", ActeNature.AUTRE: "99_AU",
}


def _classification(value: Any) -> str:
    """``"9.1"``, ``[9, 1]`` or ``["9", "1"]`` -> ``"9.1"`` (2 to 5 positive levels)."""
    if isinstance(value, int | float):
        value = str(value)
    if isinstance(value, str):
        parts = [p for p in re.split(r"[.\s]+", value.strip()) if p]
    elif isinstance(value, list | tuple):
        parts = [str(p).strip() for p in value]
    else:
        raise ValueError(f"classification must be a code like '9.1' or a list, got {value!r}")
    if not 2 <= len(parts) <= 5:
        raise ValueError(f"classification needs 2 to 5 levels (CodeMatiere1 and CodeMatiere2 "
                         f"are mandatory in ACTES), got {len(parts)}")
    if not all(ascii_digits(p) and int(p) > 0 for p in parts):
        raise ValueError(f"classification levels must be positive integers, got {value!r}")
    return ".".join(str(int(p)) for p in parts)


def _typology(value: str) -> str:
    return check_pattern(TYPOLOGY_RE, value, "typology code must look like '99_DE'")


def _email(value: str) -> str:
    return check_pattern(EMAIL_RE, value, "not an e-mail address accepted by ACTES")


ClassificationCode = Annotated[str, AfterValidator(_classification)]
TypologyCode = Annotated[str, AfterValidator(_typology)]
ActesEmail = Annotated[str, AfterValidator(_email)]


class AnnexeEntry(BaseModel):
    """One annex: its file name as given by the publisher and its typology code."""

    model_config = ConfigDict(extra="forbid")

    file_name: FileName
    typology: TypologyCode = Field(description="mandatory: the prefecture files annexes by it")


class ActeMetadata(BaseModel):
    """What a business application says about an acte to transmit."""

    model_config = ConfigDict(extra="forbid")

    nature: ActeNature
    number: str = Field(description="internal number, [A-Z0-9_]{1,15}")
    decision_date: date
    subject: SingleLine = Field(min_length=1, max_length=SUBJECT_MAX)
    classification: ClassificationCode
    classification_date: date
    document_papier: bool = False
    main_typology: TypologyCode | None = None
    annexes: list[AnnexeEntry] = Field(default_factory=list, max_length=200)

    @field_validator("nature", mode="before")
    @classmethod
    def _nature(cls, value: Any) -> ActeNature:
        return ActeNature.parse(value)

    @field_validator("classification", mode="before")
    @classmethod
    def _classif(cls, value: Any) -> str:
        return _classification(value)

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        return check_pattern(NUMBER_RE, value, "number must match [A-Z0-9_]{1,15} without "
                             "a leading or trailing '_'")

    @field_validator("decision_date")
    @classmethod
    def _not_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError(f"decision date {value} is in the future")
        return value

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("subject is blank")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> ActeMetadata:
        if self.main_typology is None:
            self.main_typology = self.nature.default_typology
        return self

    @property
    def classification_levels(self) -> list[int]:
        return [int(p) for p in self.classification.split(".")]

    def key(self, siren: str) -> str:
        """The acte's unique key: ``SIREN-YYYYMMDD-NUMBER`` (what S²LOW keeps unique)."""
        return acte_key(siren, self.decision_date, self.number)


@registers("acte")
class ActeDocumentMetadata(ActeMetadata):
    """Metadata of a document of flow ``acte``: the acte, plus which optional steps run."""

    publish: bool = Field(default=False, description="publish the stamped acte once acknowledged")
    deposit: bool = Field(default=True, description="deposit into the tenant's GED, if any")
    sign: bool = Field(default=False, description="sign before transmission (connector "
                       "signature: i-Parapheur or seal); the signed PDF is transmitted")


@registers("acte-followup")
class ActeFollowupMetadata(BaseModel):
    """Metadata of a document of flow ``acte-followup``: a cancellation of an acknowledged
    acte, or an answer to a prefecture letter about it."""

    model_config = ConfigDict(extra="forbid")

    acte_document: SingleLine = Field(min_length=1, max_length=64,
                                      description="bus id of the acte")
    action: Literal["cancel", "answer"]
    letter_id: int | None = Field(default=None, description="S²LOW id of the letter answered "
                                  "(default: the only unanswered letter)")
    refuse: bool = Field(default=False, description="answer: refuse to send the pieces / "
                         "reject the observations")
    typology: TypologyCode = "99_AU"
    reason: MultiLine = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _letter_for_answers(self) -> ActeFollowupMetadata:
        if self.action == "cancel" and (self.letter_id is not None or self.refuse):
            raise ValueError("letter_id and refuse only apply to action 'answer'")
        return self


def acte_key(siren: str, decision_date: date, number: str) -> str:
    """Unique key of an acte for one authority."""
    return f"{siren}-{decision_date:%Y%m%d}-{number}"


class Referent(BaseModel):
    """The person the prefecture may contact (``Referent`` of the envelope)."""

    model_config = ConfigDict(extra="forbid")

    name: SingleLine = Field(default="", max_length=200)
    phone: SingleLine = Field(default="", max_length=50)
    email: ActesEmail | None = None


class TenantActesSettings(BaseModel):
    """A member authority as the ACTES envelope identifies it (``IDCL``)."""

    model_config = ConfigDict(extra="forbid")

    siren: Siren
    departement: str = Field(description="3 characters: '069', '034', '02A', '974'")
    arrondissement: int = Field(ge=0, le=9)
    nature_autorite: str = Field(description="2-digit authority nature code")
    referent: Referent = Field(default_factory=Referent)
    return_emails: list[ActesEmail] = Field(min_length=1)

    @field_validator("departement", mode="before")
    @classmethod
    def _departement(cls, value: Any) -> str:
        text = str(value).strip().upper()
        if re.fullmatch(r"[0-9]{2}|2[AB]", text):
            text = "0" + text
        if not re.fullmatch(r"[09][0-9][0-9AB]", text):
            raise ValueError(f"departement must be 3 characters like '069' or '02A', got {value!r}")
        return text

    @field_validator("nature_autorite", mode="before")
    @classmethod
    def _nature_autorite(cls, value: Any) -> str:
        text = str(value).strip().zfill(2)
        if not re.fullmatch(r"[0-9]{2}", text):
            raise ValueError(f"nature_autorite must be a 2-digit code, got {value!r}")
        return text


class ClassificationNature(BaseModel):
    """A nature of acte in the classification, with the typologies it accepts."""

    code: int
    label: str
    short: str
    typologies: dict[str, str] = Field(default_factory=dict)


class Classification(BaseModel):
    """The prefecture's subject classification (codes like ``"9.1"``) and typologies."""

    version_date: date
    natures: list[ClassificationNature] = Field(default_factory=list)
    subjects: dict[str, str] = Field(default_factory=dict, description="code -> label")

    @classmethod
    def from_xml(cls, xml: bytes) -> Classification:
        """Parse a ``RetourClassification`` document."""
        root = parse_xml(xml, what="RetourClassification")
        if etree.QName(root).localname != "RetourClassification":
            raise ValueError(f"not a RetourClassification: {etree.QName(root).localname}")
        ns = {"a": ACTES_NS}
        natures = [_nature_entry(n) for n in root.iterfind("a:NaturesActes/a:NatureActe", ns)]
        subjects: dict[str, str] = {}
        for top in root.iterfind("a:Matieres/a:Matiere1", ns):
            _walk_subjects(top, (), subjects)
        return cls(version_date=date.fromisoformat(root.findtext("a:DateClassification", "", ns)),
                   natures=natures, subjects=subjects)

    def has(self, code: str | list[int | str]) -> bool:
        """True when the classification code (``"9.1"`` or ``[9, 1]``) exists."""
        try:
            return _classification(code) in self.subjects
        except ValueError:
            return False

    def label(self, code: str) -> str | None:
        return self.subjects.get(_classification(code))

    def typologies(self, nature: ActeNature | int) -> dict[str, str]:
        """Typology codes accepted for a nature (empty if the nature is unknown)."""
        for entry in self.natures:
            if entry.code == int(nature):
                return entry.typologies
        return {}

    def check(self, meta: ActeMetadata) -> list[str]:
        """Problems that would make the prefecture refuse ``meta`` (empty when fine)."""
        problems = []
        if not self.has(meta.classification):
            problems.append(f"classification: {meta.classification} is not in the "
                            f"classification of {self.version_date}")
        allowed = self.typologies(meta.nature)
        typologies = [("main_typology", meta.main_typology or "")]
        typologies += [(f"annexes.{i}.typology", a.typology) for i, a in enumerate(meta.annexes)]
        for field, code in typologies:
            if allowed and code not in allowed:
                problems.append(f"{field}: {code} is not allowed for nature {meta.nature.code}")
        return problems


def _attr(el: etree._Element, name: str) -> str:
    return el.get(f"{{{ACTES_NS}}}{name}") or el.get(name) or ""


def _nature_entry(el: etree._Element) -> ClassificationNature:
    typologies = {_attr(t, "CodeTypePJ"): _attr(t, "Libelle")
                  for t in el.iterfind(f"{{{ACTES_NS}}}TypePJNatureActe")}
    return ClassificationNature(code=int(_attr(el, "CodeNatureActe") or 0),
                                label=_attr(el, "Libelle"), short=_attr(el, "TypeAbrege"),
                                typologies=typologies)


def _walk_subjects(el: etree._Element, prefix: tuple[str, ...], out: dict[str, str]) -> None:
    path = (*prefix, str(int(_attr(el, "CodeMatiere"))))
    out[".".join(path)] = _attr(el, "Libelle")
    level = len(path) + 1
    for child in el.iterfind(f"{{{ACTES_NS}}}Matiere{level}"):
        _walk_subjects(child, path, out)
