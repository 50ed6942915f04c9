"""The console phase of ``demat bench``: the documents list with 100,000 documents in the
index.

The index's ``documents`` table (and the acte numbers of ``search_keys``) is filled
straight with ``COPY`` (the index is derived data: a bench may write it), spread over the
bench tenant's flows, states and the last 30 days, then vacuumed and analysed. A reader of
the tenant signs in to the console as a person does (the sign-in form, its cookie); then,
one request at a time and in turn (a busy moment of the machine slows them all), the pages
an operator opens most are timed: the documents list as it first opens, filtered by flow
and state, searched by an acte number; and the API search the list is built on.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg

from bus.dev.bench_config import TENANT
from bus.dev.bench_observe import percentile_ms
from bus.dev.bench_phases import BenchContext
from bus.dev.launcher import served_api
from bus.identity import IdentityStore
from bus.runtime import Runtime
from schemas.search_keys import normalize

FLOWS = ("acte", "invoice", "payslip", "document")
STATES = ("completed", "completed", "completed", "error", "waiting", "running")
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def fill_index(database: str, documents: int) -> str:
    """``documents`` rows in the index for the bench tenant (acte numbers as search
    keys); an acte number to look up."""
    now = datetime.now(UTC)
    docs, keys = io.StringIO(), io.StringIO()
    wanted = ""
    for i in range(documents):
        doc_id, flow = str(uuid.uuid4()), FLOWS[i % len(FLOWS)]
        created = now - timedelta(seconds=i * 2592000 / documents)
        at = created.isoformat()
        docs.write(f"{doc_id}\t{TENANT}\t{flow}\t{STATES[i % len(STATES)]}\t\\N\t5\t{at}\t{at}\n")
        if flow == "acte":
            wanted = f"BENCH{i:07d}"
            keys.write(f"{doc_id}\tacte_number\t{normalize(wanted)}\n")  # as the router
    with psycopg.connect(database) as db, db.cursor() as cur:
        with cur.copy("COPY documents (doc_id, tenant, flow, state, step, seq, created_at, "
                      "updated_at) FROM STDIN") as copy:
            copy.write(docs.getvalue())
        with cur.copy("COPY search_keys (doc_id, name, value) FROM STDIN") as copy:
            copy.write(keys.getvalue())
    with psycopg.connect(database, autocommit=True) as db:  # VACUUM: not in a transaction
        db.execute("VACUUM (ANALYZE) documents, search_keys")  # as autovacuum would, later
    return wanted


async def measure_console(ctx: BenchContext, env: dict[str, str], *,
                          documents: int = 100_000, requests: int = 100) -> dict[str, Any]:
    """p50 and p95 of each page (``requests`` each, after a warm-up one), in ms."""
    started = time.monotonic()
    number = await asyncio.to_thread(fill_index, ctx.settings.database, documents)
    filled = time.monotonic() - started
    token = await _reader(ctx)
    pages = {  # each page, and the rows (documents) it must show
        "list": ("/console/documents", 50),
        "filtered": ("/console/documents?flow=acte&state=completed", 50),
        "search": (f"/console/documents?key=acte_number&value={number}", 1),
        "api_search": ("/v1/documents?limit=50", 50)}
    found: dict[str, Any] = {"documents": documents, "requests": requests,
                             "fill_seconds": round(filled, 1)}
    # one reader opens the pages back to back: its request budget (50/s) would refuse them
    env = env | {"DEMAT_API_RATE": "10000", "DEMAT_API_BURST": "10000"}
    with served_api(env, ctx.settings.var_dir / "log" / "bench-console.log") as api:
        async with aiohttp.ClientSession(api.url, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         timeout=aiohttp.ClientTimeout(total=60)) as http:
            await _sign_in(http, token)
            times: dict[str, list[float]] = {name: [] for name in pages}
            for i in range(requests + 1):  # the pages in turn: a busy moment slows them all
                for name, (path, rows) in pages.items():
                    headers = {"Authorization": f"Bearer {token}"} \
                        if path.startswith("/v1") else {}
                    took = await _timed(http, path, headers, rows)
                    if i:  # the first round warms the process up
                        times[name].append(took)
    for name, taken in times.items():
        taken.sort()
        found[f"{name}_p50_ms"] = percentile_ms(taken, 0.5)
        found[f"{name}_p95_ms"] = percentile_ms(taken, 0.95)
    return found


async def _reader(ctx: BenchContext) -> str:
    ids = IdentityStore.of(Runtime(ctx.settings))
    login = f"bench-console-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(ids.add_user, login, TENANT, "operator")
    secret, _ = await asyncio.to_thread(ids.create_token, login, name="bench console")
    return secret


async def _sign_in(http: aiohttp.ClientSession, token: str) -> None:
    async with http.get("/console/login") as form:
        found = FORM_TOKEN.search(await form.text())
    if found is None:
        raise RuntimeError("the console's sign-in form has no form token")
    async with http.post("/console/login", data={"token": token, "form_token": found[1],
                                                 "next": "/console/documents"}) as done:
        if done.status != 200 or "/console/documents" not in str(done.url):
            raise RuntimeError(f"console sign-in failed: {done.status} {done.url}")


async def _timed(http: aiohttp.ClientSession, path: str, headers: dict[str, str],
                 rows: int) -> float:
    """Seconds a GET of ``path`` took; it must show ``rows`` documents (table rows of a
    page, entries of the API's answer)."""
    begun = time.monotonic()
    async with http.get(path, headers=headers, allow_redirects=False) as resp:
        body = await resp.text()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status}")
    took = time.monotonic() - begun
    shown = body.count('"tenant":') if path.startswith("/v1") else body.count("data-doc-id=")
    if shown != rows:
        raise RuntimeError(f"GET {path}: {shown} documents shown, not {rows}")
    return took

