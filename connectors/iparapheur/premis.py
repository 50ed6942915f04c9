"""PREMIS 3.0 as the i-Parapheur v5 standard API uses it.

A folder is created with a PREMIS ``folder`` part: one ``intellectualEntity`` object (the
folder: reserved significant properties ``i_Parapheur_reserved_type`` / ``_subtype`` /
``_dueDate``, other significant properties are metadata, ``originalName`` is the folder
name) and one ``file`` object per document (``i_Parapheur_reserved_mainDocument``
``true``/``false``, ``originalName`` = the uploaded file name). The folder's summary comes
back in the same form, with one ``event`` per workflow task (``eventIdentifier`` of type
``taskId``, ``eventType`` = the task's action, ``eventDateTime``, the acting user in
``linkingAgentIdentifier`` / ``<agent>``, the desk in ``linkingAgentRole``, the annotation
in ``eventOutcomeDetailNote``). Parsing is fail-safe: unknown nodes and values are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

NS = "http://www.loc.gov/premis/v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{NS} http://www.loc.gov/standards/premis/v3/premis.xsd"
TYPE = "i_Parapheur_reserved_type"
SUBTYPE = "i_Parapheur_reserved_subtype"
DUE_DATE = "i_Parapheur_reserved_dueDate"
MAIN_DOCUMENT = "i_Parapheur_reserved_mainDocument"
RESERVED = "i_Parapheur_reserved_"
TASK_ID = "taskId"
USER_ID = "userId"
_P = f"{{{NS}}}"


class PremisError(ValueError):
    """A PREMIS document that cannot be read (the message names the node)."""


@dataclass(frozen=True)
class PremisFile:
    """One document of the folder."""

    name: str
    main: bool
    id: str = ""
    signed_detached: bool = False  # the object carries ``signatureInformation``


@dataclass(frozen=True)
class Event:
    """One workflow task: performed (date and agent set), current (id only) or upcoming."""

    task_id: str
    action: str
    date: str
    agent_id: str
    desk: str
    note: str

    @property
    def performed(self) -> bool:
        return bool(self.task_id and self.date)

    @property
    def current(self) -> bool:
        return bool(self.task_id) and not self.date and not self.agent_id


@dataclass
class Premis:
    """A folder as PREMIS describes it."""

    name: str
    type: str = ""
    subtype: str = ""
    folder_id: str = ""
    due_date: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    files: list[PremisFile] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    agents: dict[str, str] = field(default_factory=dict)

    # --- building ---------------------------------------------------------------------

    def to_xml(self) -> bytes:
        """The document (what creation sends, what the summary answers)."""
        root = etree.Element(_P + "premis", nsmap={None: NS, "xsi": XSI}, version="3.0")
        root.set(f"{{{XSI}}}schemaLocation", SCHEMA_LOCATION)
        entity = _object(root, "intellectualEntity", self.folder_id, "folderId")
        props = [(TYPE, self.type), (SUBTYPE, self.subtype)]
        props += [(DUE_DATE, self.due_date)] if self.due_date else []
        for key, value in [*props, *self.metadata.items()]:
            _property(entity, key, value)
        _text(entity, "originalName", self.name)
        for f in self.files:
            obj = _object(root, "file", f.id, "documentId")
            _property(obj, MAIN_DOCUMENT, "true" if f.main else "false")
            _text(obj, "originalName", f.name)
            if f.signed_detached:
                sig = etree.SubElement(etree.SubElement(obj, _P + "signatureInformation"),
                                       _P + "signature")
                _text(sig, "signatureEncoding", "UTF-8")
                _text(sig, "signatureMethod", "CAdES")
        for e in self.events:
            _event(root, e)
        for ident, agent_name in self.agents.items():
            agent = etree.SubElement(root, _P + "agent")
            aid = etree.SubElement(agent, _P + "agentIdentifier")
            _text(aid, "agentIdentifierType", USER_ID)
            _text(aid, "agentIdentifierValue", ident)
            _text(agent, "agentName", agent_name)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    # --- reading ----------------------------------------------------------------------

    def current(self) -> Event | None:
        return next((e for e in self.events if e.current), None)

    def performed(self) -> list[Event]:
        return [e for e in self.events if e.performed]

    def start_task(self) -> Event | None:
        return next((e for e in self.events if e.action == "START" and e.task_id), None)

    @property
    def state(self) -> str:
        """``DRAFT``, ``PENDING``, ``FINISHED`` (the ARCHIVE task is reached) or
        ``REJECTED`` (the DELETE task is reached)."""
        with_id = [e for e in self.events if e.task_id]
        if not with_id or (with_id[-1].action == "START" and not with_id[-1].performed):
            return "DRAFT"
        last = with_id[-1].action
        return {"ARCHIVE": "FINISHED", "DELETE": "REJECTED"}.get(last, "PENDING")

    def agent(self, event: Event) -> str:
        """The acting user's name (the desk when the user is unknown)."""
        return self.agents.get(event.agent_id) or event.desk or event.agent_id

    def refusal(self) -> Event | None:
        """The task that rejected the folder (a REJECT task, else the last performed task
        with an annotation)."""
        done = [e for e in reversed(self.events) if e.performed]
        return next((e for e in done if e.action == "REJECT"),
                    next((e for e in done if e.note), None))


def parse(data: bytes) -> Premis:
    """Read a PREMIS document (creation part or folder summary)."""
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False,
                                                             no_network=True))
    except etree.XMLSyntaxError as exc:
        raise PremisError(f"not an XML document: {exc}") from None
    if root.tag != _P + "premis":
        raise PremisError(f"root element is {root.tag!r}, expected premis in namespace {NS}")
    entities = [o for o in root.iter(_P + "object") if _xsi_type(o) == "intellectualEntity"]
    if len(entities) != 1:
        raise PremisError(f"{len(entities)} intellectualEntity object(s), expected one")
    entity = entities[0]
    props = _properties(entity)
    premis = Premis(name=_child_text(entity, "originalName"), type=props.pop(TYPE, ""),
                    subtype=props.pop(SUBTYPE, ""), due_date=props.pop(DUE_DATE, ""),
                    folder_id=_identifier(entity, "objectIdentifier"),
                    metadata={k: v for k, v in props.items() if not k.startswith(RESERVED)})
    premis.files = [_file(o) for o in root.iter(_P + "object") if _xsi_type(o) == "file"]
    premis.events = [_read_event(e) for e in root.iter(_P + "event")]
    premis.agents = {_identifier(a, "agentIdentifier"): _child_text(a, "agentName")
                     for a in root.iter(_P + "agent")}
    return premis


def draft(name: str, type_: str, subtype: str, files: Iterable[tuple[str, bool]], *,
          metadata: dict[str, str] | None = None, due_date: str = "") -> bytes:
    """The ``folder`` part of a creation: the folder, its typology and its documents."""
    return Premis(name=name, type=type_, subtype=subtype, due_date=due_date,
                  metadata=dict(metadata or {}),
                  files=[PremisFile(n, main) for n, main in files]).to_xml()


# --- helpers --------------------------------------------------------------------------


def _text(parent: etree._Element, tag: str, value: str) -> etree._Element:
    node = etree.SubElement(parent, _P + tag)
    node.text = value
    return node


def _object(root: etree._Element, kind: str, ident: str, id_type: str) -> etree._Element:
    obj = etree.SubElement(root, _P + "object")
    obj.set(f"{{{XSI}}}type", kind)
    if ident:
        oid = etree.SubElement(obj, _P + "objectIdentifier")
        _text(oid, "objectIdentifierType", id_type)
        _text(oid, "objectIdentifierValue", ident)
    return obj


def _property(obj: etree._Element, key: str, value: str) -> None:
    prop = etree.SubElement(obj, _P + "significantProperties")
    _text(prop, "significantPropertiesType", key)
    _text(prop, "significantPropertiesValue", value)


def _event(root: etree._Element, e: Event) -> None:
    node = etree.SubElement(root, _P + "event")
    eid = etree.SubElement(node, _P + "eventIdentifier")
    _text(eid, "eventIdentifierType", TASK_ID)
    _text(eid, "eventIdentifierValue", e.task_id)
    _text(node, "eventType", e.action)
    _text(node, "eventDateTime", e.date)
    if e.note:
        outcome = etree.SubElement(etree.SubElement(node, _P + "eventOutcomeInformation"),
                                   _P + "eventOutcomeDetail")
        _text(outcome, "eventOutcomeDetailNote", e.note)
    agent = etree.SubElement(node, _P + "linkingAgentIdentifier")
    _text(agent, "linkingAgentIdentifierType", USER_ID)
    _text(agent, "linkingAgentIdentifierValue", e.agent_id)
    if e.desk:
        _text(agent, "linkingAgentRole", e.desk)


def _xsi_type(node: etree._Element) -> str:
    return (node.get(f"{{{XSI}}}type") or "").rpartition(":")[2]


def _child_text(node: etree._Element, path: str) -> str:
    found = node.find("/".join(_P + p for p in path.split("/")))
    return (found.text or "").strip() if found is not None else ""


def _identifier(node: etree._Element, tag: str) -> str:
    ident = node.find(_P + tag)
    if ident is None:
        return ""
    return next(((c.text or "").strip() for c in ident if c.tag.endswith("Value")), "")


def _properties(obj: etree._Element) -> dict[str, str]:
    return {_child_text(p, "significantPropertiesType"):
            _child_text(p, "significantPropertiesValue")
            for p in obj.findall(_P + "significantProperties")}


def _file(obj: etree._Element) -> PremisFile:
    name = _child_text(obj, "originalName")
    if not name:
        raise PremisError("file object without originalName")
    main = _properties(obj).get(MAIN_DOCUMENT, "false").lower()
    if main not in ("true", "false"):
        raise PremisError(f"file {name!r}: {MAIN_DOCUMENT} is {main!r}, expected true/false")
    return PremisFile(name, main == "true", _identifier(obj, "objectIdentifier"),
                      obj.find(_P + "signatureInformation") is not None)


def _read_event(node: etree._Element) -> Event:
    ident = node.find(_P + "eventIdentifier")
    id_type = _child_text(ident, "eventIdentifierType") if ident is not None else ""
    task_id = _child_text(ident, "eventIdentifierValue") if ident is not None else ""
    return Event(task_id=task_id if id_type in ("", TASK_ID) else "",
                 action=_child_text(node, "eventType") or "UNKNOWN",
                 date=_child_text(node, "eventDateTime"),
                 agent_id=_child_text(node, "linkingAgentIdentifier/linkingAgentIdentifierValue"),
                 desk=_child_text(node, "linkingAgentIdentifier/linkingAgentRole"),
                 note=_child_text(node, "eventOutcomeInformation/eventOutcomeDetail/"
                                        "eventOutcomeDetailNote"))
