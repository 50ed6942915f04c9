"""The incumbent's state names (``last_action``) of bus states and steps, and the
Pastell action a native webhook event payload stands for (what the door's event stream
and the Pastell-shaped webhooks send)."""

from __future__ import annotations

from typing import Any

from bus.pastell.flux import CANCEL_STATES, FLUX, STEP_STATES, Flux, StepStates
from schemas.messages import DocState

Record = dict[str, Any]
DONE_MESSAGE = "Traitement terminé"  # the message of a completed document's last action


def step_states(step: str | None, flux: Flux) -> StepStates:
    """The incumbent's state names of bus step ``step`` in documents of ``flux``."""
    step = step or "validate"
    return flux.states.get(step) or STEP_STATES.get(step, STEP_STATES["validate"])


def state_name(states: StepStates, state: DocState, done: str) -> str:
    """The incumbent's name of a bus state (``done``: of a completed document)."""
    return {DocState.COMPLETED: done, DocState.ERROR: states.error,
            DocState.REJECTED: states.rejected,
            DocState.DUPLICATE: "fatal-error"}.get(state, states.running)


def event_action(record: Record, native: dict[str, Any]) -> dict[str, Any] | None:
    """``{id_d, id_e, flux, action, message, date}`` of the Pastell document ``record``
    for a native event payload (``bus.webhooks.events.payload``) of its bus document,
    named from the event itself (the stored state may lag behind the journal), its
    message as the document's detail gives it;
    ``None`` for an event carrying no document state."""
    flux = FLUX[record["info"]["type"]]
    data = native.get("data") or {}
    try:
        state = DocState(data.get("state"))
    except ValueError:
        return None
    if native.get("document") == record.get("cancel_id"):
        name = state_name(CANCEL_STATES, state, CANCEL_STATES.done)
    elif state == DocState.COMPLETED:
        name = flux.final
    else:
        name = state_name(step_states(data.get("step"), flux), state, flux.final)
    detail = data.get("detail") or {}
    message = str(detail.get("message") or detail.get("error") or (
        DONE_MESSAGE if state == DocState.COMPLETED else f"étape {data.get('step') or ''}"))
    return {"id_d": record["info"]["id_d"], "id_e": str(record["id_e"]), "flux": flux.name,
            "action": name, "message": message,
            "date": str(native.get("occurred_at", "")).replace("T", " ")[:19]}
