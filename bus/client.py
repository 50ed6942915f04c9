"""Python SDK for producer applications: upload files, submit, wait.

    async with DematClient() as bus:
        receipt = await bus.submit("document", ["letter.pdf"], tenant="216900910",
                                   metadata={"title": "Lettre"}, key="app-42")
        state = await bus.wait(receipt.doc_id)
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer

from bus import intake
from bus.broker import encode
from bus.objectstore import IntegrityError
from bus.runtime import Runtime
from bus.settings import Settings
from schemas.envelope import Envelope, FileRef, FileRole
from schemas.errors import first_error
from schemas.messages import DocumentState, SubmitMessage

T = TypeVar("T")


@dataclass(frozen=True)
class FileInput:
    """A local file to submit, with its role and optionally its expected digest."""

    path: Path
    role: FileRole = FileRole.MAIN
    sha256: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class BytesInput:
    """A small file held in memory (an HTTP upload), with its name and role."""

    data: bytes
    name: str
    role: FileRole = FileRole.MAIN


Input = FileInput | BytesInput


@dataclass(frozen=True)
class Receipt:
    """The answer to a submission: the document id, and whether it already existed."""

    doc_id: str
    duplicate: bool = False


class DematClient:
    """Submit documents to the bus and follow them."""

    def __init__(self, settings: Settings | None = None, producer_name: str = "sdk",
                 submitted_by: str | None = None) -> None:
        self.runtime = Runtime(settings) if settings else Runtime()
        self.producer_name = producer_name
        self.submitted_by = submitted_by  # who the journal names as submitter
        self.states = self.runtime.states
        self._producer: AIOKafkaProducer | None = None
        # uploads and look-ups are blocking S3 calls: run them on as many threads as the
        # store has connections (asyncio's default pool has cores + 4)
        self._pool = ThreadPoolExecutor(self.runtime.settings.io_threads,
                                        thread_name_prefix="demat-client")

    async def _in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def __aenter__(self) -> DematClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            **self.runtime.settings.kafka_options, acks="all",
            enable_idempotence=False, linger_ms=2)
        await self._producer.start()

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        self._pool.shutdown(wait=False)

    def prepare(self, flow: str, files: list[Input | Path | str], *, tenant: str,
                metadata: dict[str, Any], key: str | None = None,
                correlation_id: str | None = None) -> Envelope:
        """Check the submission, then upload its files; raise ``SubmissionError`` if bad."""
        inputs = [f if isinstance(f, Input) else FileInput(Path(f)) for f in files]
        if not inputs:
            raise intake.SubmissionError("files", "at least one file is required")
        for i, f in enumerate(inputs):
            intake.check_file_name_of(i, _name(f))
            _check_readable(i, f)
        draft = self.envelope(flow, tenant, metadata, key, correlation_id, [
            FileRef(sha256="0" * 64, size=max(1, _size(f)),
                    media_type="application/octet-stream", role=f.role,
                    name=_name(f)) for f in inputs])
        intake.check_envelope(draft, self.runtime.flows, self.runtime.tenants)
        encrypt = self.runtime.flows.get(flow).encrypt_files
        refs = [self._upload(i, tenant, f, encrypt) for i, f in enumerate(inputs)]
        return draft.model_copy(update={"files": refs})

    async def submit(self, flow: str, files: list[Input | Path | str], *, tenant: str,
                     metadata: dict[str, Any], key: str | None = None,
                     correlation_id: str | None = None) -> Receipt:
        """Upload and submit; the same key with the same content returns the first id."""
        env = await self._in_thread(self.prepare, flow, files, tenant=tenant,
                                      metadata=metadata, key=key, correlation_id=correlation_id)
        return await self.submit_envelope(env)

    async def submit_envelope(self, env: Envelope) -> Receipt:
        """Publish an envelope whose files are already stored (its key claimed first)."""
        first = await self.claim(env)
        if first is not None:
            return Receipt(first, duplicate=True)
        try:
            await self.publish(env)
        except BaseException:
            await self._in_thread(self.runtime.keys.release, env)
            raise
        return Receipt(env.id)

    async def claim(self, env: Envelope) -> str | None:
        """Claim the envelope's idempotency key: the first document's id if another holds
        it (``SubmissionError`` if its content differs); ``None`` if ``env`` holds it now
        or has no key (``IdempotencyKeys.claim``)."""
        if env.idempotency_key is None:
            return None
        return await self._in_thread(self.runtime.keys.claim, env)

    async def publish(self, env: Envelope) -> None:
        """Keep the receipt of an envelope whose files are stored, then send it to intake,
        keyed by its id (acks all); a message not sent leaves no receipt."""
        assert self._producer is not None, "call start() first"
        await self._in_thread(self.runtime.receipts.keep, env)
        try:
            await self._producer.send_and_wait(self.runtime.topics.submit,
                                               encode(SubmitMessage(envelope=env)),
                                               key=env.id.encode())
        except BaseException:
            await self._in_thread(self.runtime.receipts.drop, env.id)
            raise

    async def submit_many(self, envs: list[Envelope], concurrency: int = 16, *,
                          checked: bool = False) -> list[Receipt]:
        """Publish envelopes whose files are stored, pipelined (keys claimed in threads,
        their receipts kept in one round trip, sends not awaited one by one); receipts in
        the order given. ``checked``: the
        caller already looked their keys up (no claim here; intake claims them)."""
        gate = asyncio.Semaphore(concurrency)

        async def first_of(env: Envelope) -> str | None:
            async with gate:
                return await self.claim(env)

        firsts = [None] * len(envs) if checked else \
            await asyncio.gather(*(first_of(e) for e in envs))
        assert self._producer is not None, "call start() first"
        todo = [env for env, first in zip(envs, firsts, strict=True) if first is None]
        await self._in_thread(self.runtime.receipts.keep_many, todo)
        sends = [await self._producer.send(self.runtime.topics.submit,
                                           encode(SubmitMessage(envelope=env)),
                                           key=env.id.encode()) for env in todo]
        sent = await asyncio.gather(*sends, return_exceptions=True)
        failed = [(env, got) for env, got in zip(todo, sent, strict=True)
                  if isinstance(got, BaseException)]
        if failed:
            await self._in_thread(self.runtime.receipts.drop, *(env.id for env, _ in failed))
            for env, _ in failed:
                await self._in_thread(self.runtime.keys.release, env)
            raise failed[0][1]
        return [Receipt(first, duplicate=True) if first else Receipt(env.id)
                for env, first in zip(envs, firsts, strict=True)]

    async def status(self, doc_id: str) -> DocumentState | None:
        return await self.states.load(doc_id)

    async def wait(self, doc_id: str, timeout: float = 60.0, interval: float = 0.2
                   ) -> DocumentState | None:
        """Poll until the document reaches a terminal state (or the timeout)."""
        deadline = time.monotonic() + timeout
        state = await self.status(doc_id)
        while (state is None or not state.state.terminal) and time.monotonic() < deadline:
            await asyncio.sleep(interval)
            state = await self.status(doc_id)
        return state

    def envelope(self, flow: str, tenant: str, metadata: dict[str, Any], key: str | None,
                  correlation_id: str | None, files: list[FileRef]) -> Envelope:
        """An envelope of stored ``files`` (``SubmissionError`` naming a bad field)."""
        from pydantic import ValidationError

        try:
            return Envelope(tenant=tenant, flow=flow, metadata=metadata, files=files,
                            idempotency_key=key, producer=self.producer_name,
                            submitted_by=self.submitted_by,
                            correlation_id=correlation_id,
                            flow_version=_flow_version(self.runtime, flow))
        except ValidationError as exc:
            raise intake.SubmissionError(*first_error(exc)) from None

    def _upload(self, index: int, tenant: str, f: Input, encrypt: bool = False) -> FileRef:
        store = self.runtime.store
        if isinstance(f, BytesInput):
            return store.put_bytes(tenant, f.data, name=f.name, role=f.role, encrypt=encrypt)
        try:
            return store.put_path(tenant, f.path, role=f.role, name=f.name,
                                  expected_sha256=f.sha256, encrypt=encrypt)
        except IntegrityError as exc:
            raise intake.SubmissionError(f"files[{index}]", str(exc)) from None


def _flow_version(runtime: Runtime, flow: str) -> int:
    try:
        return runtime.flows.get(flow).version
    except KeyError:
        return 1


def _size(f: Input) -> int:
    return len(f.data) if isinstance(f, BytesInput) else f.path.stat().st_size


def _name(f: Input) -> str:
    return f.name if isinstance(f, BytesInput) else f.name or f.path.name


def _check_readable(index: int, f: Input) -> None:
    field = f"files[{index}]"
    if isinstance(f, BytesInput):
        if not f.data:
            raise intake.SubmissionError(field, f"file {f.name} is empty")
        return
    path = f.path
    if not path.exists():
        raise intake.SubmissionError(field, f"file {path} does not exist")
    if not path.is_file():
        raise intake.SubmissionError(field, f"{path} is not a regular file")
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise intake.SubmissionError(field, f"file {path} is unreadable: {exc.strerror}") from None
    if path.stat().st_size == 0:
        raise intake.SubmissionError(field, f"file {path} is empty")
