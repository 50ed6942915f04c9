"""The Pastell view of the bus: an entity is a tenant, a document a draft kept by the
door until ``orientation`` submits it, then the bus document it became. Rights are the
caller's roles (``{flux}:lecture`` = read, or read-own on what it created;
``{flux}:edition`` = submit), and the state (``last_action``) derives from the bus
document's state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from bus.api.auth import bus_of
from bus.api.pastell.historique import HISTORY, historique
from bus.api.pastell.http import PastellError
from bus.identity import Identity
from bus.pastell.flux import CANCEL_STATES, FLUX, Flux, StepStates
from bus.pastell.states import DONE_MESSAGE, state_name, step_states
from bus.pastell.store import PastellStore, Record
from schemas.messages import DocState as State
from schemas.messages import DocumentState

# the incumbent's field names of what the bus's steps made, by artefact kind
OUTPUT_FIELDS = {"signed": "document_signe", "stamped": "acte_tamponne", "receipt": "aractes"}
FINISHED = (State.COMPLETED, State.ERROR, State.REJECTED, State.DUPLICATE)


@dataclass
class Door:
    """One request's view: the bus, the caller, the door's store."""

    bus: Any
    who: Identity
    store: PastellStore

    @classmethod
    def of(cls, request: Request, who: Identity) -> Door:
        app = request.app
        if getattr(app.state, "pastell", None) is None:
            runtime = bus_of(request).client.runtime
            app.state.pastell = PastellStore(runtime.database, runtime.store.keyring)
        return cls(bus_of(request), who, app.state.pastell)

    @property
    def tenants(self) -> Any:
        return self.bus.client.runtime.tenants

    def provided(self, name: str) -> Any:
        """The function a flow family offers the doors as ``name`` (``bus.plugins``):
        the door never imports ``workers/``. 400 when no loaded family offers it."""
        fn = self.bus.client.runtime.registry.provider(name)
        if fn is None:
            raise PastellError(400, f"Le service {name} n'est pas disponible sur ce bus")
        return fn

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn`` in a thread (the store and the database block)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def numbers(self) -> dict[str, int]:
        return await self.run(self.store.numbers, self.tenants)

    async def id_e(self, siren: str) -> str:
        return str((await self.numbers())[siren])

    async def entity(self, id_e: str, right: str = "entite:lecture") -> str:
        """The tenant (SIREN) of entity ``id_e``: 404 if none, 403 if the caller holds no
        role on it (the incumbent's messages)."""
        by_number = {str(n): s for s, n in (await self.numbers()).items()}
        siren = by_number.get(str(id_e).strip())
        if siren is None:
            raise PastellError(404, f"L'entité {id_e} n'existe pas")
        if not self.who.roles_on(siren, self.tenants):
            raise self.forbidden(id_e, right)
        return siren

    def forbidden(self, id_e: str, right: str) -> PastellError:
        return PastellError(403, f"Acces interdit id_e={id_e}, droit={right},"
                                 f"id_u={self.who.login}")

    def may(self, permission: str, siren: str) -> bool:
        return self.who.may(permission, siren, self.tenants)

    def reads(self, siren: str) -> bool:
        return self.may("read", siren) or self.may("read-own", siren)

    def edits(self, siren: str) -> bool:
        return self.may("submit", siren)

    def flux(self, name: str, id_e: str, siren: str, right: str = "edition") -> Flux:
        """The flux ``name`` if the caller may use it on the entity: a flux the bus has no
        flow for is one nobody holds a right on (403, as the incumbent answers)."""
        flux = FLUX.get(name)
        allowed = self.edits(siren) if right == "edition" else self.reads(siren)
        if flux is None or not allowed or not self.uses(siren, flux):
            raise self.forbidden(id_e, f"{name}:{right}")
        return flux

    def uses(self, siren: str, flux: Flux) -> bool:
        """Whether the tenant uses a flow the flux's documents go to."""
        return any(self.tenants.get(siren).uses(f) for f in flux.flows)

    async def document(self, id_e: str, id_d: str, right: str = "lecture"
                       ) -> tuple[Record, Flux]:
        """The Pastell document ``id_d`` of entity ``id_e`` the caller may see, else the
        incumbent's 404 (another entity's document answers as an unknown one)."""
        siren = await self.entity(id_e)
        record = await self.run(self.store.get, id_d) if len(id_d) <= 64 else None
        gone = PastellError(404, f"Le document {id_d} n'appartient pas à l'entité {id_e}")
        if record is None:
            raise gone
        flux = FLUX[record["info"]["type"]]
        if right == "edition" and not self.edits(siren):
            raise self.forbidden(id_e, f"{flux.name}:edition")
        if not self.reads(siren):
            raise self.forbidden(id_e, f"{flux.name}:lecture")
        if record["tenant"] != siren or not self.sees(record):
            raise gone
        return record, flux

    def sees(self, record: Record) -> bool:
        return self.may("read", record["tenant"]) or (
            self.may("read-own", record["tenant"]) and record["producer"] == self.who.producer)

    async def native(self, record: Record) -> DocumentState | None:
        """The bus document the Pastell document became (``None`` while a draft, or
        before the router has it)."""
        doc_id = record.get("doc_id")
        return await self.bus.client.status(doc_id) if doc_id else None

    async def cancel_state(self, record: Record) -> DocumentState | None:
        doc_id = record.get("cancel_id")
        return await self.bus.client.status(doc_id) if doc_id else None


def _date(state: DocumentState) -> str:
    return state.updated_at.strftime("%Y-%m-%d %H:%M:%S")


def last_action(flux: Flux, record: Record, state: DocumentState | None,
                cancel: DocumentState | None = None) -> dict[str, str]:
    """``{action, message, date}``: the incumbent's state name of where the document is."""
    if cancel is not None or record.get("cancel_id"):
        return _of_states(CANCEL_STATES, cancel, record["actions"][-1], "annuler-tdt")
    if state is None:
        return dict(record["actions"][-1])
    if state.state == State.COMPLETED:
        return {"action": flux.final, "message": DONE_MESSAGE, "date": _date(state)}
    return _of_states(step_states(state.current_step, flux), state, record["actions"][-1],
                      flux.final)


def _of_states(states: StepStates, state: DocumentState | None, first: dict[str, str],
               done: str) -> dict[str, str]:
    if state is None:
        return {"action": states.running, "message": first["message"], "date": first["date"]}
    message = state.error.message if state.error else f"étape {state.current_step or ''}"
    return {"action": state_name(states, state.state, done), "message": message,
            "date": _date(state)}


def missing_field(flux: Flux, record: Record) -> str:
    """The first validation error of the form, or ``""`` when it is valid."""
    data, files = record["data"], record["files"]
    if not files.get(flux.main):
        return f"Le formulaire est incomplet : le champ « {flux.main} » est obligatoire."
    for name in flux.required:
        if not str(data.get(name, "")).strip():
            label = flux.fields[name].label or name
            return f"Le formulaire est incomplet : le champ « {label} » est obligatoire."
    return ""


def actions_possible(flux: Flux, record: Record, state: DocumentState | None,
                     last: str) -> list[str]:
    """What the caller may trigger now (``action_possible``)."""
    if record.get("doc_id") is None:
        found = ["modification", "supression"]
        return found + ([flux.sends[0]] if not missing_field(flux, record) else [])
    found = []
    if state is None or state.state not in FINISHED:
        found += flux.verifs
    if "annulation-tdt" in flux.extra_actions and not record.get("cancel_id") and (
            last in ("acquiter-tdt", flux.final, "send-ged", "send-archive", "accepter-sae")):
        found.append("annulation-tdt")
    if state is not None and state.state in FINISHED:
        found.append("supression")
    return found


async def detail(door: Door, record: Record, flux: Flux) -> dict[str, Any]:
    """The document detail object: ``info``, ``data``, ``action_possible`` (also as
    ``action-possible``) and ``last_action``."""
    state, cancel = await door.native(record), await door.cancel_state(record)
    last = last_action(flux, record, state, cancel)
    data = dict(record["data"])
    for field, refs in record["files"].items():
        data[field] = [ref["name"] for ref in refs]
    for name, refs in outputs(flux, state).items():
        data[name] = [ref["name"] for ref in refs]
    if historique(state) is not None:
        data[HISTORY] = [f"{HISTORY}.xml"]
    possible = actions_possible(flux, record, state, last["action"])
    info = dict(record["info"], titre=str(data.get(flux.title, "")))
    return {"info": info, "data": data, "action_possible": possible,
            "action-possible": possible, "last_action": last}


def outputs(flux: Flux, state: DocumentState | None) -> dict[str, list[dict[str, Any]]]:
    """Files the bus made, under the incumbent's field names: the signed document
    (``document_signe``), the receipts and stamped acte (``aractes``, ``acte_tamponne``),
    any other as ``bus_<kind>``."""
    if state is None:
        return {}
    found: dict[str, list[dict[str, Any]]] = {}
    for artefact in state.artefacts:
        name = OUTPUT_FIELDS.get(artefact.kind, f"bus_{artefact.kind}")
        found.setdefault(name, []).append(artefact.file.model_dump(mode="json"))
    return found
