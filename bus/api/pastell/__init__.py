"""The Pastell-compatible door: ``/api/v2/…`` and the v1 ``/api/*.php`` scripts, a facade
over the bus for applications written against the incumbent (see the README's "Coming
from Pastell"). Drafts live in the bus's database until ``orientation`` submits them."""

from __future__ import annotations

from fastapi import APIRouter

from bus.api.pastell import documents, events, files, journal, legacy, misc

router = APIRouter()
router.include_router(files.router)  # before documents: /document/{id_d}/file/...
router.include_router(documents.router)
router.include_router(misc.router)
router.include_router(events.router)
router.include_router(journal.router)
router.include_router(legacy.router)
