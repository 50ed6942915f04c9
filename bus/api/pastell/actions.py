"""Actions on a Pastell document: ``orientation`` (and the historic ``send-*``) submit
the draft to the bus through the native door's code (``bus.api.documents.publish_as``,
the flow's intake checks first); ``verif-*`` report where the bus is; ``annulation-tdt``
submits the acte's cancellation as the native ``/v1/actes/{id}/cancel`` does;
``supression`` forgets the Pastell document (the bus keeps its journal)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from bus import intake
from bus.api.documents import publish_as
from bus.api.pastell.http import PastellError, not_permitted
from bus.api.pastell.model import Door, actions_possible, last_action, missing_field
from bus.client import BytesInput
from bus.intake import SubmissionError
from bus.pastell.flux import Flux
from bus.pastell.store import Record, now_text
from schemas.envelope import FileRef, FileRole, utcnow

TRUE = ("on", "1", "true", "oui", "yes")
ACTION_MESSAGES = {
    "orientation": "Le document a été transmis au bus",
    "annulation-tdt": "La demande d'annulation a été transmise",
}


def note(record: Record, action: str, message: str) -> None:
    """Record ``action`` as the document's newest action."""
    record["actions"].append({"action": action, "message": message, "date": now_text()})


def _value(flux: Flux, name: str, raw: str) -> Any:
    kind = flux.fields[name].kind
    if kind == "bool":
        return raw.strip().lower() in TRUE
    if kind == "int":
        if not raw.strip().isdigit():
            raise SubmissionError(name, f"un entier est attendu, pas {raw!r}")
        return int(raw)
    if kind == "list":
        return json.loads(raw) if raw.startswith("[") else [raw]
    return raw


def metadata(flux: Flux, record: Record) -> dict[str, Any]:
    """The bus metadata of the document's fields (the flux's table)."""
    meta: dict[str, Any] = dict(flux.defaults)
    for name, raw in record["data"].items():
        field = flux.fields.get(name)
        if field is not None and field.meta is not None and str(raw) != "":
            meta[field.meta] = _value(flux, name, str(raw))
    return flux.derive(record["data"], meta) if flux.derive is not None else meta


def files(flux: Flux, record: Record) -> list[FileRef]:
    main = [FileRef.model_validate(r | {"role": FileRole.MAIN.value})
            for r in record["files"].get(flux.main, [])]
    annexes = [FileRef.model_validate(r | {"role": FileRole.ANNEX.value})
               for r in record["files"].get(flux.annexes or "", [])]
    return main + annexes


async def acte_metadata(door: Door, record: Record, flux: Flux, meta: dict[str, Any]
                        ) -> dict[str, Any]:
    """An acte's (or HR act's) annexes with their typologies (``type_pj``) and the date of the
    classification in force."""
    typologies = _value_list(record["data"].get("type_pj", ""))
    names = [r["name"] for r in record["files"].get(flux.annexes or "", [])]
    meta["annexes"] = [{"file_name": n, "typology": t}
                       for n, t in zip(names, typologies + ["99_AU"] * len(names),
                                       strict=False)]
    tenant = door.tenants.get(record["tenant"])
    found = await door.provided("actes.classification")(door.bus.client.runtime, tenant)
    meta["classification_date"] = (found.version_date if found else date.today()).isoformat()
    return meta


def _value_list(raw: str) -> list[str]:
    if not raw:
        return []
    return [str(v) for v in json.loads(raw)] if raw.startswith("[") else [raw]


async def submit(door: Door, record: Record, flux: Flux) -> str:
    """Submit the draft to the bus as its caller; the bus document's id. The key
    ``pastell:<id_d>`` makes a repeated orientation answer the same document."""
    meta, flow = metadata(flux, record), flux.flow_for(record["data"])
    if "classification" in flux.external:  # an acte, or an HR act the TdT may receive
        meta = await acte_metadata(door, record, flux, meta)
    client = door.bus.client
    env = client.envelope(flow, record["tenant"], meta, f"pastell:{record['info']['id_d']}",
                          None, files(flux, record))
    intake.check_envelope(door.who.stamp(env), client.runtime.flows, client.runtime.tenants)
    await intake.check_flow(client.runtime, env)
    receipt = await publish_as(door.bus, door.who, env)
    return receipt.doc_id


async def cancel(door: Door, record: Record) -> str:
    """Submit the cancellation of the acknowledged acte (flow ``acte-followup``)."""
    state = await door.native(record)
    if state is None:
        raise not_permitted("annulation-tdt", "l'acte n'a pas été transmis")
    if not door.may("cancel", record["tenant"]):
        raise door.forbidden(str(record["id_e"]), f"{record['info']['type']}:edition")
    cancellation = door.provided("actes.cancellation")
    name, content, meta = cancellation(state, "demande par l'API Pastell", utcnow())
    client = door.bus.client
    env = await client._in_thread(client.prepare, "acte-followup",
                                  [BytesInput(content, name)], tenant=record["tenant"],
                                  metadata=meta, correlation_id=state.doc_id)
    await intake.check_flow(client.runtime, env)
    return (await publish_as(door.bus, door.who, env)).doc_id


async def run_action(door: Door, record: Record, flux: Flux, action: str) -> dict[str, Any]:
    """Trigger ``action``: ``{result: true, message}``, or 400 when not permitted now."""
    state = await door.native(record)
    last = last_action(flux, record, state, await door.cancel_state(record))
    possible = actions_possible(flux, record, state, last["action"])
    if action in flux.sends and record.get("doc_id") is None:
        if why := missing_field(flux, record):
            raise not_permitted(action, why)
        record["doc_id"] = await submit(door, record, flux)
    elif action.startswith("verif-") and action in possible:
        return {"result": True, "message": f"{last['action']} : {last['message']}"}
    elif action == "annulation-tdt" and action in possible:
        record["cancel_id"] = await cancel(door, record)
    elif action == "supression" and action in possible:
        await door.run(door.store.delete, record["info"]["id_d"])
        return {"result": True, "message": f"Le document « {record['info']['titre']} » a "
                                           "été supprimé"}
    elif action == "modification" and action in possible:
        pass
    else:
        raise not_permitted(action, f"l'état « {last['action']} » ne la permet pas")
    message = ACTION_MESSAGES.get(action, action)
    note(record, action, message)
    await door.run(door.store.put, record)
    return {"result": True, "message": message}


def check_action_name(action: str) -> None:
    if not action or len(action) > 64:
        raise PastellError(400, f"L'action « {action} » n'existe pas")
