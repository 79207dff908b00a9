"""Outgoing mail: a durable outbox, the SMTP transport, and the sender that drains one into
the other.

A message enters the outbox (`mail_outbox`, keyed by the id of the event it answers, so adding
it twice keeps one) before anyone is told it was sent; the sender claims due messages with a
lease, sends each over SMTP and, once the server accepted it, strips it to a tombstone (id and
time only, kept `SENT_KEPT`), so the projector applying the same event again — it does, after
the request handler queued it — does not send it twice. A crash between the
two sends it again at the next start (at least once: a duplicate mail, never a lost one); a
server that refuses or is unreachable is retried with a growing delay. A message holds the
recipient and the text in clear only while it waits — seconds when the server answers — and an
erasure deletes a subject's waiting messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.events.envelope import normalize_time

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=10)
#: How long a sent message's tombstone is kept (longer than any event still makes a mail).
SENT_KEPT = timedelta(days=7)


@dataclass(frozen=True)
class MailMessage:
    message_id: str
    user_id: str
    to: str
    subject: str
    text: str


class MailOutbox(Protocol):
    async def add(self, message: MailMessage) -> None:
        """Queue a message (a second add of the same id keeps the first)."""
        ...

    async def claim_due(self, now: datetime) -> MailMessage | None:
        """One message due now, leased to the caller for `LEASE`."""
        ...

    async def sent(self, message_id: str) -> None: ...

    async def failed(self, message_id: str, now: datetime) -> int:
        """Release the lease; retry after `backoff(attempts)`; returns the attempts so far."""
        ...

    async def pending(self) -> int: ...

    async def delete_subject(
        self, user_id: str, session: AsyncClientSession | None = None
    ) -> int: ...


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 … seconds after each failed attempt, at most `MAX_BACKOFF`."""
    return min(timedelta(seconds=2 ** min(attempts, 20)), MAX_BACKOFF)


class MongoMailOutbox:
    """Collection `mail_outbox`: `{_id: message id, user_id, to, subject, text, created_at,
    due_at, attempts}`."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.outbox = db["mail_outbox"]

    async def ensure_indexes(self) -> None:
        await self.outbox.create_index("due_at")
        await self.outbox.create_index("user_id")
        await self.outbox.create_index("purge_at", expireAfterSeconds=0)

    async def add(self, message: MailMessage) -> None:
        now = datetime.now(UTC)
        await self.outbox.update_one(
            {"_id": message.message_id},
            {
                "$setOnInsert": {
                    "user_id": message.user_id,
                    "to": message.to,
                    "subject": message.subject,
                    "text": message.text,
                    "created_at": now,
                    "due_at": now,
                    "attempts": 0,
                }
            },
            upsert=True,
        )

    async def claim_due(self, now: datetime) -> MailMessage | None:
        doc = await self.outbox.find_one_and_update(
            {"due_at": {"$lte": now}},
            {"$set": {"due_at": now + LEASE}},
            sort=[("due_at", 1)],
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        return MailMessage(doc["_id"], doc["user_id"], doc["to"], doc["subject"], doc["text"])

    async def sent(self, message_id: str) -> None:
        now = datetime.now(UTC)
        await self.outbox.update_one(
            {"_id": message_id},
            {
                "$set": {"sent_at": now, "purge_at": now + SENT_KEPT},
                "$unset": {"to": "", "subject": "", "text": "", "due_at": ""},
            },
        )

    async def failed(self, message_id: str, now: datetime) -> int:
        doc = await self.outbox.find_one_and_update(
            {"_id": message_id}, {"$inc": {"attempts": 1}}, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            return 0
        attempts = int(doc["attempts"])
        await self.outbox.update_one(
            {"_id": message_id}, {"$set": {"due_at": now + backoff(attempts)}}
        )
        return attempts

    async def pending(self) -> int:
        return await self.outbox.count_documents({"sent_at": {"$exists": False}})

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        """Delete the subject's waiting messages (counted: they hold the address) and their
        tombstones (ids only)."""
        waiting = await self.outbox.delete_many(
            {"user_id": user_id, "sent_at": {"$exists": False}}, session=session
        )
        await self.outbox.delete_many({"user_id": user_id}, session=session)
        return waiting.deleted_count


class InMemoryMailOutbox:
    def __init__(self) -> None:
        self.messages: dict[str, tuple[MailMessage, datetime, int]] = {}
        self.sent_ids: dict[str, str] = {}  # message id → user id (the tombstones)

    async def add(self, message: MailMessage) -> None:
        if message.message_id not in self.sent_ids:
            self.messages.setdefault(message.message_id, (message, datetime.now(UTC), 0))

    async def claim_due(self, now: datetime) -> MailMessage | None:
        due = sorted(
            (at, m.message_id) for m, at, _ in self.messages.values() if normalize_time(at) <= now
        )
        if not due:
            return None
        message, _, attempts = self.messages[due[0][1]]
        self.messages[message.message_id] = (message, now + LEASE, attempts)
        return message

    async def sent(self, message_id: str) -> None:
        message = self.messages.pop(message_id, None)
        if message is not None:
            self.sent_ids[message_id] = message[0].user_id

    async def failed(self, message_id: str, now: datetime) -> int:
        message, _, attempts = self.messages[message_id]
        self.messages[message_id] = (message, now + backoff(attempts + 1), attempts + 1)
        return attempts + 1

    async def pending(self) -> int:
        return len(self.messages)

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        mine = [key for key, (m, _, _) in self.messages.items() if m.user_id == user_id]
        for key in mine:
            del self.messages[key]
        for key in [k for k, owner in self.sent_ids.items() if owner == user_id]:
            del self.sent_ids[key]
        return len(mine)


# --- transports ---------------------------------------------------------------------------------


class MailTransport(Protocol):
    async def send(self, message: MailMessage) -> None:
        """Hand the message to the mail server; raises when it was not accepted."""
        ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    timeout: float = 15.0


def mime(message: MailMessage, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Message-ID"] = make_msgid(idstring=message.message_id[:32], domain="mmgen.identity")
    mail.set_content(message.text)
    return mail


class SmtpTransport:
    """SMTP with STARTTLS (certificate checked) unless turned off, and AUTH when a user is set;
    smtplib runs in a worker thread."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: MailMessage) -> None:
        await asyncio.to_thread(self._send, mime(message, self.config.sender))

    def _send(self, mail: EmailMessage) -> None:
        config = self.config
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            smtp.ehlo()
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password or "")
            smtp.send_message(mail)


class InMemoryMailTransport:
    """What a unit test reads instead of a mailbox."""

    def __init__(self) -> None:
        self.sent: list[MailMessage] = []

    async def send(self, message: MailMessage) -> None:
        self.sent.append(message)


# --- the sender ---------------------------------------------------------------------------------


class MailSender:
    """Drains the outbox into the transport: at start, after `wake()`, and every `interval`."""

    def __init__(
        self, outbox: MailOutbox, transport: MailTransport | None, *, interval: float = 2.0
    ) -> None:
        self.outbox = outbox
        self.transport = transport
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self.transport is None:
            log.warning("no SMTP server configured: mail waits in the outbox")
            return
        self._task = asyncio.create_task(self._run(), name="identity-mail-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.drain()
            except Exception:
                log.exception("the mail outbox could not be drained")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)

    async def drain(self) -> int:
        """Send what is due now; returns how many were accepted by the server."""
        if self.transport is None:
            return 0
        sent = 0
        while (message := await self.outbox.claim_due(datetime.now(UTC))) is not None:
            try:
                await self.transport.send(message)
            except Exception as exc:  # noqa: BLE001 - any failure: keep the mail, retry later
                attempts = await self.outbox.failed(message.message_id, datetime.now(UTC))
                log.warning(
                    "mail not accepted; retrying",
                    extra={
                        "message_id": message.message_id,
                        "attempts": attempts,
                        "error": type(exc).__name__,
                    },
                )
                break
            await self.outbox.sent(message.message_id)
            sent += 1
        return sent
