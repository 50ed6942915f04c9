"""Intake checks of the legality-control flows.

At intake a classification that cannot be known yet (S²LOW down, nothing cached) defers
that one check to the ``validate`` step, which retries until the platform answers.
"""

from __future__ import annotations

from bus.intake import SubmissionError
from bus.plugins import REGISTRY
from bus.runtime import Runtime
from connectors.errors import TransientError
from schemas.envelope import Envelope
from schemas.messages import DocumentState
from workers.actes.acte import (
    PDF,
    acte_files,
    acte_metadata,
    actes_settings,
    followup_metadata,
    known_letters,
    official_id,
)
from workers.actes.classification import current_classification

ANSWERABLE = ("CourrierSimple", "DemandePieceComplementaire", "LettreObservations")


@REGISTRY.flow_check("acte")
async def check_acte(runtime: Runtime, env: Envelope, *, at_intake: bool = True) -> None:
    """Tenant ACTES identity, main PDF, annex typologies, current classification."""
    tenant = runtime.tenants.get(env.tenant)
    actes_settings(tenant)
    meta = acte_metadata(env)
    acte_files(env, meta)
    classification = await current_classification(runtime, tenant)
    if classification is None:
        if at_intake:
            return
        raise TransientError(f"classification of tenant {tenant.siren} unknown: S²LOW "
                             "did not answer and nothing is cached", partner="s2low")
    for problem in classification.check(meta):
        field, _, message = problem.partition(": ")
        raise SubmissionError(f"metadata.{field}", f"{message} (current classification of "
                              f"tenant {tenant.siren}, {classification.version_date})")
    if meta.classification_date > classification.version_date:
        raise SubmissionError("metadata.classification_date", f"{meta.classification_date} "
                              f"is newer than the current classification "
                              f"({classification.version_date})")


@REGISTRY.flow_check("acte-followup")
async def check_followup(runtime: Runtime, env: Envelope, *, at_intake: bool = True) -> None:
    """The acte exists, belongs to the tenant and is acknowledged; the letter answered
    exists and can be answered; answers are PDFs."""
    meta = followup_metadata(env)
    actes_settings(runtime.tenants.get(env.tenant))
    state = await load_acte(runtime, env.tenant, meta.acte_document)
    if official_id(state) is None:
        raise SubmissionError("metadata.acte_document", f"acte {meta.acte_document} has no "
                              f"acknowledgement from the prefecture yet ({state.state.value})")
    if meta.action == "answer":
        pick_letter(state, meta.letter_id)
        if env.files[0].media_type != PDF:
            raise SubmissionError("files[0]", f"the answer {env.files[0].name!r} must be a PDF")


async def load_acte(runtime: Runtime, tenant: str, doc_id: str) -> DocumentState:
    """The state of the acte document ``doc_id`` of ``tenant`` (read only)."""
    state = await runtime.states.load(doc_id)
    env = state.envelope if state else None
    if state is None or env is None or env.flow != "acte" or env.tenant != tenant:
        raise SubmissionError("metadata.acte_document",
                              f"no acte document {doc_id} for tenant {tenant}")
    return state


def pick_letter(state: DocumentState, letter_id: int | None) -> dict:
    """The letter an answer is for: ``letter_id``, else the only answerable one."""
    letters = [x for x in known_letters(state) if x["kind"] in ANSWERABLE]
    if letter_id is not None:
        match = [x for x in known_letters(state) if x["id"] == letter_id]
        if not match:
            raise SubmissionError("metadata.letter_id", f"no prefecture letter {letter_id} "
                                  f"about acte {state.doc_id}")
        if match[0]["kind"] not in ANSWERABLE:
            raise SubmissionError("metadata.letter_id", f"a {match[0]['kind']} is not "
                                  "answered through the platform")
        return match[0]
    if len(letters) != 1:
        raise SubmissionError("metadata.letter_id", f"acte {state.doc_id} has "
                              f"{len(letters)} letters that can be answered: give letter_id")
    return letters[0]
