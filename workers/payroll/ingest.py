"""Payroll run ingestion: an index (CSV or JSON) and a folder or ZIP of pay slip PDFs.

The whole run is checked first (every row's metadata, files missing or extra,
duplicates, channels the tenant lacks); one problem rejects the run with a report
naming row, file and field, and nothing is uploaded or published. Then files are
uploaded (encrypted, as the flow says) and envelopes published, pipelined.

Index columns / keys: ``file``, ``matricule``, ``period``, ``employer_siret``,
``agent_name``, ``channels`` (``|``-separated in CSV), and optional ``nir``,
``birth_name``, ``birth_date``, ``net_amount`` (the last three required by channel
``ensap``), ``email`` (by ``secure-mail``), ``payment_date``.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bus.client import DematClient, FileInput, Receipt
from bus.intake import SubmissionError
from bus.objectstore import file_digest
from bus.sniff import sniff
from bus.tenants import Tenant, TenantRegistry
from bus.unzip import ZipRefused, extract_zip
from schemas.envelope import Envelope, FileRef, FileRole
from schemas.errors import field_errors
from schemas.payslip import Channel, PayslipMetadata
from schemas.text import check_file_name
from workers.payroll.checks import missing_channels

FLOW = "payslip"
INDEX_NAMES = ("index.csv", "index.json")
OPTIONAL = ("nir", "birth_name", "birth_date", "email", "payment_date")
DEFAULT_LOT_SIZE = 500


class RunRejected(ValueError):
    """The run has problems; nothing was published."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"payroll run rejected: {len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the run, located (values of personal fields never quoted)."""

    row: int | None  # 1-based data row of the index (None: not tied to a row)
    file: str | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "file": self.file, "field": self.field, "message": self.message}


@dataclass
class PayslipRow:
    row: int
    file: str
    path: Path
    metadata: dict[str, Any]
    key: str


@dataclass
class PayrollRun:
    """A checked run, ready to publish."""

    run_id: str
    tenant: str
    rows: list[PayslipRow]
    workdir: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def close(self) -> None:
        if self.workdir is not None:
            self.workdir.cleanup()


# --- reading ------------------------------------------------------------------------


def _open_source(source: Path, work_dir: Path | None
                 ) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """The folder holding the PDFs (a ZIP is expanded within bounds under ``work_dir``,
    the data directory's, else beside the ZIP: never the system's temporary folder)."""
    if source.is_dir():
        return source, None
    if not source.is_file():
        raise RunRejected([Problem(None, str(source), None, "no such folder or ZIP file")])
    if not zipfile.is_zipfile(source):
        raise RunRejected([Problem(None, str(source), None, "not a folder nor a ZIP file")])
    try:
        tmp = extract_zip(source, work_dir or source.parent)
    except ZipRefused as exc:
        raise RunRejected([Problem(None, exc.member or source.name, None, str(exc))]
                          ) from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise RunRejected([Problem(None, source.name, None, f"unreadable ZIP: {exc}")]
                          ) from None
    return Path(tmp.name), tmp


def read_index(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV (header line, ``,`` or ``;``) or JSON (list, or ``{"rows": [...]}``)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RunRejected([Problem(None, str(path), None, f"index unreadable: {exc.strerror}")]
                          ) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RunRejected([Problem(None, path.name, None, f"malformed JSON: {exc}")]
                              ) from None
        rows = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise RunRejected([Problem(None, path.name, None,
                                       "JSON index must be a list of objects")])
        return rows
    header = text.split("\n", 1)[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    rows = []
    for raw in reader:
        row = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k}
        if isinstance(row.get("channels"), str):
            row["channels"] = [c.strip() for c in row["channels"].replace(";", "|").split("|")
                               if c.strip()]
        for name in OPTIONAL:
            if row.get(name) == "":
                row.pop(name)
        rows.append(row)
    return rows


# --- checking -----------------------------------------------------------------------


def check_run(source: Path, index: Path | None, tenants: TenantRegistry, *,
              tenant: str | None = None, lot_size: int = DEFAULT_LOT_SIZE,
              work_dir: Path | None = None) -> PayrollRun:
    """Read and check the whole run; ``RunRejected`` with every problem found.
    ``work_dir``: where a ZIP run is expanded (the data directory's ``tmp``)."""
    folder, workdir = _open_source(source, work_dir)
    try:
        index = index or next((folder / n for n in INDEX_NAMES if (folder / n).exists()), None)
        if index is None:
            raise RunRejected([Problem(None, None, "--index", "no index given and no "
                                       "index.csv / index.json in the run")])
        raw_rows = read_index(index)
        run = _check_rows(folder, index, raw_rows, tenants, tenant, lot_size)
        run.workdir = workdir
        return run
    except BaseException:
        if workdir is not None:
            workdir.cleanup()
        raise


def _check_rows(folder: Path, index: Path, raw_rows: list[dict[str, Any]],
                tenants: TenantRegistry, tenant: str | None, lot_size: int) -> PayrollRun:
    problems: list[Problem] = []
    if not raw_rows:
        raise RunRejected([Problem(None, index.name, None, "the index has no rows")])
    tenant = tenant or _tenant_of(raw_rows, tenants, problems)
    owner = tenants.get(tenant) if tenant in tenants else None
    connectors = set(owner.connectors) if owner is not None else set()
    if tenant is not None and tenant not in tenants:
        problems.append(Problem(None, None, "tenant", f"tenant {tenant} is not configured"))
    rows: list[PayslipRow] = []
    seen_files: dict[str, int] = {}
    seen_keys: dict[str, int] = {}
    seen_nirs: dict[tuple[str, str, str], int] = {}
    for n, raw in enumerate(raw_rows, start=1):
        name = str(raw.get("file") or "")
        meta = {k: v for k, v in raw.items() if k != "file" and v is not None}
        row_problems = _row_problems(n, name, folder, meta, connectors)
        if owner is not None and not row_problems:
            row_problems = _employer_problems(n, name, meta, owner)
        problems += row_problems
        if name:
            if name in seen_files:
                problems.append(Problem(n, name, "file", f"file already listed at row "
                                                         f"{seen_files[name]}"))
            seen_files.setdefault(name, n)
        if row_problems:
            continue
        parsed = PayslipMetadata.model_validate(meta)
        key = parsed.idempotency_key()
        if key in seen_keys:
            problems.append(Problem(n, name, "matricule", f"pay slip of matricule "
                            f"{parsed.matricule} for {parsed.period} already at row "
                            f"{seen_keys[key]}"))
            continue
        seen_keys[key] = n
        if parsed.nir is not None:
            nir_key = (parsed.nir, parsed.employer_siret, parsed.period)
            if nir_key in seen_nirs:  # one person, two matricules, same employer and month
                problems.append(Problem(n, name, "nir", f"same nir as row {seen_nirs[nir_key]} "
                                                        "for the same employer and period"))
                continue
            seen_nirs[nir_key] = n
        rows.append(PayslipRow(n, name, folder / name, meta, key))
    index_names = {index.name} if index.parent.resolve() == folder.resolve() else set()
    for extra in sorted(_pdfs(folder) - set(seen_files) - index_names):
        problems.append(Problem(None, extra, "file", "file is in the run but not in the index"))
    if problems:
        raise RunRejected(problems)
    assert tenant is not None
    run_id = _run_id(index, rows)
    _assign_lots(rows, run_id, lot_size)
    return PayrollRun(run_id, tenant, rows)


def _row_problems(n: int, name: str, folder: Path, meta: dict[str, Any],
                  connectors: set[str]) -> list[Problem]:
    problems = []
    if not name:
        problems.append(Problem(n, None, "file", "no file name"))
    else:
        path = folder / name
        bad_name = _bad_name(path.name)
        if bad_name:
            problems.append(Problem(n, name, "file", bad_name))
        elif not path.resolve().is_relative_to(folder.resolve()):
            problems.append(Problem(n, name, "file", "file name leaves the run folder"))
        elif not path.is_file():
            problems.append(Problem(n, name, "file", "file is missing from the run"))
        elif path.stat().st_size == 0:
            problems.append(Problem(n, name, "file", "file is empty"))
        else:
            with path.open("rb") as fh:
                if not fh.read(5).startswith(b"%PDF-"):
                    problems.append(Problem(n, name, "file", "file is not a PDF"))
    try:
        parsed = PayslipMetadata.model_validate(meta)
    except ValidationError as exc:
        for where, message in field_errors(exc, root="(row)"):
            problems.append(Problem(n, name or None, where, message))
        return problems
    missing = missing_channels(connectors, [c.value for c in parsed.channels])
    if missing and connectors:
        problems.append(Problem(n, name or None, "channels", "tenant has no connector for "
                                                             f"{', '.join(missing)}"))
    return problems


def _bad_name(name: str) -> str | None:
    """Why the targets cannot store a file of this name (``check_file_name``), if so."""
    try:
        check_file_name(name)
    except ValueError as exc:
        return str(exc)
    return None


def _employer_problems(n: int, name: str, meta: dict[str, Any], owner: Tenant
                       ) -> list[Problem]:
    """A run speaks only for its tenant: every employer SIRET is one of its own."""
    siret = str(meta.get("employer_siret", ""))
    if owner.owns_siret(siret):
        return []
    return [Problem(n, name or None, "employer_siret", f"SIRET {siret} is not an "
                    f"establishment of tenant {owner.siren}")]


def _tenant_of(rows: list[dict[str, Any]], tenants: TenantRegistry,
               problems: list[Problem]) -> str | None:
    sirens = {str(r.get("employer_siret", "")).replace(" ", "")[:9] for r in rows}
    if len(sirens) == 1:
        siren = sirens.pop()
        if siren in tenants:
            return siren
    problems.append(Problem(None, None, "tenant", "give --tenant: the employers' SIRENs do "
                                                  "not name one configured tenant"))
    return None


def _pdfs(folder: Path) -> set[str]:
    """Every (non-hidden) file of the run folder."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def _run_id(index: Path, rows: list[PayslipRow]) -> str:
    """Same index, same run id (a resubmitted run maps to the same lots and keys)."""
    digest = hashlib.sha256(index.read_bytes()).hexdigest()[:12]
    return f"{rows[0].metadata['period']}-{digest}"


def _assign_lots(rows: list[PayslipRow], run_id: str, lot_size: int) -> None:
    ensap = [r for r in rows if Channel.ENSAP.value in r.metadata.get("channels", [])]
    for start in range(0, len(ensap), lot_size):
        members = ensap[start:start + lot_size]
        for i, row in enumerate(members):
            row.metadata["ensap_batch"] = {"id": f"{run_id}-{start // lot_size}", "index": i,
                                           "size": len(members)}


# --- publishing ---------------------------------------------------------------------


Progress = Callable[[str, int], None]  # (phase "uploaded"/"published", count)


@dataclass
class Published:
    """What publishing a run did."""

    receipts: list[Receipt]
    already: int  # pay slips submitted before with the same content (not sent again)
    lookup_seconds: float = 0.0  # checking every key against the bus
    publish_seconds: float = 0.0  # uploading and publishing


async def publish_run(client: DematClient, run: PayrollRun, *, progress: Progress | None = None,
                      uploaders: int = 16, chunk: int = 200) -> Published:
    """Check the run against the bus, then upload and publish, pipelined.

    A pay slip whose key was already used with other content rejects the whole run
    before anything is uploaded; one already submitted identically is skipped.
    """
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=uploaders, thread_name_prefix="payroll-upload")
    started = time.monotonic()
    try:
        seen = await asyncio.gather(*(loop.run_in_executor(pool, _earlier, client, run, r)
                                      for r in run.rows))
    except BaseException:
        pool.shutdown(wait=True)
        raise
    problems = [p for p in seen if isinstance(p, Problem)]
    if problems:
        pool.shutdown(wait=True)
        raise RunRejected(problems)
    already = [Receipt(p, duplicate=True) for p in seen if isinstance(p, str)]
    todo = [r for r, p in zip(run.rows, seen, strict=True) if p is None]
    if progress and already:
        progress("uploaded", len(already))
        progress("published", len(already))
    looked = time.monotonic()
    receipts = await _upload_and_publish(client, run, todo, pool, loop, progress, chunk)
    return Published(already + receipts, len(already), round(looked - started, 2),
                     round(time.monotonic() - looked, 2))


def _earlier(client: DematClient, run: PayrollRun, row: PayslipRow) -> str | Problem | None:
    """The document already submitted under the row's key, a conflict, or ``None``."""
    sha, size, head = file_digest(row.path)
    ref = FileRef(sha256=sha, size=size, media_type=sniff(head), role=FileRole.MAIN,
                  name=Path(row.file).name)
    env = Envelope(tenant=run.tenant, flow=FLOW, metadata=row.metadata, files=[ref],
                   idempotency_key=row.key, producer=client.producer_name,
                   flow_version=client.runtime.flows.get(FLOW).version)
    try:
        return client.runtime.keys.find(env)
    except SubmissionError:
        return Problem(row.row, row.file, "idempotency_key", "this pay slip (employer, period, "
                       "matricule) was already submitted with different content")


async def _upload_and_publish(client: DematClient, run: PayrollRun, todo: list[PayslipRow],
                              pool: ThreadPoolExecutor, loop: asyncio.AbstractEventLoop,
                              progress: Progress | None, chunk: int) -> list[Receipt]:
    receipts: list[Receipt] = []

    async def publish(envs: list) -> None:
        receipts.extend(await client.submit_many(envs, checked=True))
        if progress:
            progress("published", len(envs))

    try:
        pending: asyncio.Task | None = None
        for start in range(0, len(todo), chunk):  # upload chunk k+1 while k publishes
            rows = todo[start:start + chunk]
            envs = await asyncio.gather(*(loop.run_in_executor(pool, _prepare, client, run, r)
                                          for r in rows))
            if progress:
                progress("uploaded", len(envs))
            if pending is not None:
                await pending
            pending = asyncio.create_task(publish(list(envs)))
        if pending is not None:
            await pending
    finally:
        pool.shutdown(wait=True)
    return receipts


def _prepare(client: DematClient, run: PayrollRun, row: PayslipRow):
    try:
        return client.prepare(FLOW, [FileInput(row.path, name=Path(row.file).name)],
                              tenant=run.tenant, metadata=row.metadata, key=row.key)
    except SubmissionError as exc:  # checked before: only a file changed under our feet
        raise RunRejected([Problem(row.row, row.file, exc.field, exc.message)]) from None
