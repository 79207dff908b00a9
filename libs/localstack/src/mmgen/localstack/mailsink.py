"""A local SMTP sink: accepts every message and keeps it as a file, so mail flows (email
verification, password reset) work end to end without an outside mail server.

Standard library only (asyncio; `smtpd` is gone from Python 3.12). It speaks the part of SMTP
(RFC 5321) a client needs to hand over a message — HELO/EHLO, MAIL, RCPT, DATA with
dot-unstuffing, RSET, NOOP, QUIT — with no TLS and no AUTH: it listens on loopback and relays
nothing. Each message is `<dir>/<id>.eml` (the message as received) beside `<id>.json` (the
envelope: sender, recipients, time), written atomically; `read_messages` and `read_message`
are what `mmgen mail` and the tests use.

    python -m mmgen.localstack.mailsink --host 127.0.0.1 --port 2525 --dir .mmgen/mail
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class StoredMail:
    id: str
    received_at: float
    mail_from: str
    rcpt_to: list[str]
    path: Path

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def subject(self) -> str:
        return str(self.message().get("Subject", ""))

    @property
    def to(self) -> list[str]:
        header = self.message().get("To")
        return [str(header)] if header else list(self.rcpt_to)

    def text(self) -> str:
        body = self.message().get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        return str(text).replace("\r\n", "\n")


def store_message(directory: Path, mail_from: str, rcpt_to: list[str], data: bytes) -> str:
    """Keep one message; returns its id (time-ordered)."""
    directory.mkdir(parents=True, exist_ok=True)
    message_id = f"{time.time_ns():020d}-{secrets.token_hex(3)}"
    _write(directory / f"{message_id}.eml", data)
    envelope = {"id": message_id, "received_at": time.time(), "mail_from": mail_from,
                "rcpt_to": rcpt_to}  # fmt: skip
    _write(directory / f"{message_id}.json", json.dumps(envelope).encode())
    return message_id


def _write(path: Path, data: bytes) -> None:
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_bytes(data)
    os.replace(partial, path)


def read_messages(directory: Path, to: str | None = None) -> list[StoredMail]:
    """Every kept message, oldest first; `to`: only those for this recipient (any case)."""
    if not directory.is_dir():
        return []
    found = []
    for meta in sorted(directory.glob("*.json")):
        try:
            envelope = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        mail = StoredMail(
            id=envelope["id"],
            received_at=float(envelope["received_at"]),
            mail_from=envelope["mail_from"],
            rcpt_to=list(envelope["rcpt_to"]),
            path=meta.with_suffix(".eml"),
        )
        if to is None or to.strip().lower() in (r.lower() for r in mail.rcpt_to):
            found.append(mail)
    return found


def read_message(directory: Path, message_id: str) -> StoredMail | None:
    """One message by its id (or a unique prefix, or its position from the end: `-1`)."""
    messages = read_messages(directory)
    if message_id.lstrip("-").isdigit() and message_id.startswith("-"):
        index = int(message_id)
        return messages[index] if -len(messages) <= index < 0 else None
    matches = [m for m in messages if m.id.startswith(message_id)]
    return matches[0] if len(matches) == 1 else None


def _address(argument: str) -> str:
    """The address of `FROM:<a@b> SIZE=…` / `TO:<a@b>`."""
    value = argument.split(":", 1)[1].strip() if ":" in argument else argument.strip()
    if value.startswith("<"):
        value = value[1 : value.find(">")] if ">" in value else value[1:]
    return value.split(" ", 1)[0].strip()


class SmtpSession:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.reset()

    def reset(self) -> None:
        self.mail_from: str | None = None
        self.rcpt_to: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        await reply(f"220 {socket.gethostname()} mmgen mail sink ready")
        while True:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                await reply("250-mmgen mail sink")
                await reply(f"250-SIZE {MAX_MESSAGE_BYTES}")
                await reply("250 8BITMIME")
            elif verb == "HELO":
                await reply("250 mmgen mail sink")
            elif verb == "MAIL":
                self.reset()
                self.mail_from = _address(argument)
                await reply("250 OK")
            elif verb == "RCPT":
                if self.mail_from is None:
                    await reply("503 MAIL first")
                    continue
                self.rcpt_to.append(_address(argument))
                await reply("250 OK")
            elif verb == "DATA":
                if self.mail_from is None or not self.rcpt_to:
                    await reply("503 MAIL and RCPT first")
                    continue
                await reply("354 End data with <CR><LF>.<CR><LF>")
                data = await self._data(reader)
                if data is None:
                    await reply("552 message too large")
                else:
                    message_id = store_message(self.directory, self.mail_from, self.rcpt_to, data)
                    await reply(f"250 OK queued as {message_id}")
                self.reset()
            elif verb == "RSET":
                self.reset()
                await reply("250 OK")
            elif verb == "NOOP":
                await reply("250 OK")
            elif verb == "QUIT":
                await reply("221 Bye")
                return
            elif verb in {"STARTTLS", "AUTH"}:
                await reply("502 not offered by the local sink")
            else:
                await reply("500 command not recognised")

    async def _data(self, reader: asyncio.StreamReader) -> bytes | None:
        lines: list[bytes] = []
        size = 0
        too_large = False
        while True:
            raw = await reader.readline()
            if not raw or raw in (b".\r\n", b".\n"):
                break
            if raw.startswith(b".."):
                raw = raw[1:]  # RFC 5321 §4.5.2 transparency
            size += len(raw)
            if size > MAX_MESSAGE_BYTES:
                too_large = True
            elif not too_large:
                lines.append(raw)
        return None if too_large else b"".join(lines)


async def serve(host: str, port: int, directory: Path) -> None:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await SmtpSession(directory).handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(on_client, host, port, limit=MAX_LINE_BYTES)
    async with server:
        await server.serve_forever()


def smtp_ready(host: str, port: int, timeout: float = 2.0) -> bool:
    """The sink answers with a 220 greeting."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        greeting = sock.recv(512)
        sock.sendall(b"QUIT\r\n")
    return greeting.startswith(b"220")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="local SMTP sink of the mmgen stack")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.dir))


if __name__ == "__main__":
    main()
