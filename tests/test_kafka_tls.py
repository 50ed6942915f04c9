"""The bus's Kafka clients over TLS, on a real broker.

The embedded Tansu cannot serve TLS itself (its ``--cert`` cannot be given with
``--key`` and the listener stays plain), so this test puts a TLS terminator (Python's
``ssl``) in front of a Tansu that advertises the terminator's address: every connection
of the clients, bootstrap and after, is TLS, verified against the test CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bus.broker import ensure_topics, make_broker, start_producer
from bus.consumer import KeyOrderedConsumer
from bus.dev.embedded import free_ports, kafka_answers, stop_process, tansu_binary
from bus.settings import Settings

pytestmark = pytest.mark.stack


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA (``ca.pem``) and a server certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("test CA")).issuer_name(_name("test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(_name("kafka")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture()
def plain_broker(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A Tansu broker on a plain port that advertises another port: (plain, advertised)."""
    plain, advertised = free_ports(2)
    argv = [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{plain}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{advertised}",
            "--storage-engine", "memory://tansu/"]
    with (tmp_path / "tansu.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not kafka_answers(plain) and time.monotonic() < deadline:
        time.sleep(0.1)
    yield plain, advertised
    stop_process(proc.pid, grace=5)
    proc.wait()


@contextlib.asynccontextmanager
async def _tls_terminator(port: int, target: int, cert: Path, key: Path
                          ) -> AsyncIterator[list[int]]:
    """TLS on ``port`` forwarded in clear to ``target``; yields the connection count."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    accepted: list[int] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", port, ssl=context)
    async with server:
        yield accepted


async def _key_ordered(settings: Settings, topic: str) -> list[bytes]:
    """What the steps' and webhooks' consumer (a consumer group) reads of ``topic``."""
    seen: list[bytes] = []
    done = asyncio.Event()

    async def handle(record) -> None:  # type: ignore[no-untyped-def]
        seen.append(record.value)
        if len(seen) == 2:
            done.set()

    consumer = KeyOrderedConsumer(settings.bootstrap, [topic], f"{topic}.group", handle,
                                  security=settings.kafka_security)
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(done.wait(), 60)
    consumer.stop()
    await task
    return seen


def test_every_client_of_the_bus_talks_tls_to_the_broker(plain_broker: tuple[int, int],
                                                         tmp_path: Path) -> None:
    plain, port = plain_broker
    ca, cert, key = _certificates(tmp_path)
    settings = Settings(var_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{port}",
                        kafka_security_protocol="SSL", kafka_ca_file=ca, partitions=1)
    topic = f"demat.tls.{time.time_ns()}"

    async def go() -> tuple[list[bytes], int]:
        async with _tls_terminator(port, plain, cert, key) as accepted:
            await ensure_topics(settings, [topic])  # the admin client
            producer = await start_producer(settings)
            await producer.send_and_wait(topic, b"plain producer", key=b"d1")
            await producer.stop()
            broker = make_broker(settings)  # FastStream
            await broker.start()
            await broker.publish(b"faststream", topic, key=b"d2")
            await broker.stop()
            consumer = AIOKafkaConsumer(topic, **settings.kafka_options, group_id=None,
                                        auto_offset_reset="earliest")
            await consumer.start()
            records = await consumer.getmany(timeout_ms=10_000, max_records=10)
            await consumer.stop()
            values = [r.value for batch in records.values() for r in batch]
            return values + await _key_ordered(settings, topic), len(accepted)

    values, connections = asyncio.run(go())
    assert sorted(values) == sorted([b"faststream", b"plain producer"] * 2)
    assert connections >= 5  # admin, producer, FastStream, both consumers: all through TLS


def test_a_client_that_does_not_trust_the_broker_or_speaks_plain_gets_nothing(
        plain_broker: tuple[int, int], tmp_path: Path) -> None:
    plain, port = plain_broker
    _ca, cert, key = _certificates(tmp_path)
    (tmp_path / "other").mkdir()
    other_ca = _certificates(tmp_path / "other")[0]  # a CA that did not sign the broker's
    untrusting = Settings(var_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{port}",
                          kafka_security_protocol="SSL", kafka_ca_file=other_ca)
    plaintext = Settings(var_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{port}")

    async def attempt(settings: Settings) -> None:
        producer = AIOKafkaProducer(**settings.kafka_options, request_timeout_ms=3000)
        try:
            await asyncio.wait_for(producer.start(), 15)
        finally:
            await producer.stop()

    async def go() -> None:
        async with _tls_terminator(port, plain, cert, key):
            for settings in (untrusting, plaintext):
                with pytest.raises((KafkaConnectionError, asyncio.TimeoutError)):
                    await attempt(settings)

    asyncio.run(go())
