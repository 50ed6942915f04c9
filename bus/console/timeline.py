"""A document's step timeline: each step's record (attempts, waits, outputs, error) with
the journal events about it, in the order they happened."""

from __future__ import annotations

from typing import Any

from schemas.messages import DocumentState

SHOWN_DETAIL = ("attempt", "reason", "error_class", "message", "retry_in", "poll_seconds",
                "dlq_id", "from_step", "artefacts", "partner", "status")


def _brief(detail: dict[str, Any]) -> dict[str, Any]:
    """The parts of an event's detail a person reads on the timeline (an error's class
    and message, an attempt number, a partner's reply...)."""
    shown = {k: detail[k] for k in SHOWN_DETAIL if detail.get(k) not in (None, "", [], {})}
    error = detail.get("error")
    if isinstance(error, dict):
        shown |= {k: error[k] for k in ("error_class", "message", "partner") if error.get(k)}
    if isinstance(shown.get("artefacts"), list):
        shown["artefacts"] = ", ".join(str(a.get("name", a)) if isinstance(a, dict) else str(a)
                                       for a in shown["artefacts"])
    return shown


def timeline(state: DocumentState, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per step (in the flow's order of running), each with the journal events
    about it; events about no step (submitted, completed) are the journal's alone."""
    entries: list[dict[str, Any]] = []
    by_step: dict[str, dict[str, Any]] = {}
    for record in state.steps:
        entry = {"step": record.name, "status": record.status, "attempts": record.attempts,
                 "polls": record.polls, "started_at": record.started_at,
                 "finished_at": record.finished_at,
                 "error": record.error.model_dump(mode="json") if record.error else None,
                 "output": {k: v for k, v in record.output.items()
                            if isinstance(v, str | int | float) and len(str(v)) < 200},
                 "events": []}
        entries.append(entry)
        by_step[record.name] = entry  # a step run again: its latest run gets the events
    for event in events:
        shown = {"type": event["type"], "at": event["at"], "actor": event["actor"],
                 "state": event["state"], "detail": _brief(event.get("detail") or {})}
        target = by_step.get(event.get("step") or "")
        if target is not None:
            target["events"].append(shown)
    return entries
