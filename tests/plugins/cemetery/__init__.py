"""A throwaway flow family (cemetery concessions), loaded with ``DEMAT_PLUGINS``: a flow
YAML, a schema module and this package, with no file of the bus edited."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from bus.intake import SubmissionError
from bus.plugins import REGISTRY
from schemas.envelope import Envelope
from tests.plugins.cemetery.schema import ConcessionMetadata
from workers.step import StepContext, StepResultData, step

REGISTRY.flows_in(Path(__file__).with_name("flows"))


@REGISTRY.flow_check("cemetery-concession")
async def check_concession(runtime: Any, env: Envelope, *, at_intake: bool = True) -> None:
    """A concession is not granted in the future."""
    meta = ConcessionMetadata.model_validate(env.metadata)
    if meta.granted_on > date.today():
        raise SubmissionError("metadata.granted_on", "a concession cannot be granted in the "
                              f"future ({meta.granted_on.isoformat()})")


@step("cemetery-register")
async def register(ctx: StepContext) -> StepResultData:
    """Enter the concession in the cemetery register (kept as an artefact)."""
    meta = ConcessionMetadata.model_validate(ctx.task.envelope.metadata)
    expires = ("perpetual" if meta.duration_years == 0 else
               meta.granted_on.replace(year=meta.granted_on.year + meta.duration_years)
               .isoformat())
    entry = {"concession": meta.concession_number, "cemetery": meta.cemetery,
             "granted_on": meta.granted_on.isoformat(), "expires": expires}
    await ctx.keep(json.dumps(entry).encode(), name="register-entry.json",
                   kind="register-entry", media_type="application/json")
    return StepResultData(output={"register_entry": meta.concession_number,
                                  "expires": expires})
