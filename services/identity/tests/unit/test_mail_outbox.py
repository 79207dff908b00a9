"""The mail outbox and its sender over the fakes: sent once, kept on failure, fail closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mmgen.identity.adapters.mail import (
    InMemoryMailOutbox,
    InMemoryMailTransport,
    MailMessage,
    MailSender,
)
from mmgen.identity.bootstrap import IdentityService, MailSenderComponent
from mmgen.identity.service_layer.accounts import Registration
from mmgen.identity.settings import IdentitySettings
from mmgen.platform import ConfigurationError
from services.identity.tests.identity_kit import passphrase, stored_events, unique_email


class RefusingTransport:
    def __init__(self) -> None:
        self.attempts = 0

    async def send(self, message: MailMessage) -> None:
        self.attempts += 1
        raise ConnectionRefusedError("no server")


def message(n: int = 1) -> MailMessage:
    return MailMessage(f"event-{n}", "user-1", "ada@example.org", "subject", "text")


async def test_a_message_is_sent_once_even_when_its_event_is_applied_again(
    identity: IdentityService,
) -> None:
    transport = InMemoryMailTransport()
    sender = MailSender(identity.mail_outbox, transport)
    email = unique_email()
    await identity.accounts.register(
        Registration(email=email, password=passphrase(), name="Ada Lovelace", role="client")
    )
    assert await sender.drain() == 1
    # The runtime's projector applies every stored event again, after the request handler.
    for envelope in await stored_events(identity):
        await identity.mail_projection.apply(envelope)
    assert await sender.drain() == 0
    assert [m.to for m in transport.sent] == [email]


async def test_a_refused_message_stays_and_is_retried_later() -> None:
    outbox, transport = InMemoryMailOutbox(), RefusingTransport()
    sender = MailSender(outbox, transport)
    await outbox.add(message())
    assert await sender.drain() == 0
    assert transport.attempts == 1 and await outbox.pending() == 1
    assert await sender.drain() == 0  # not due yet: backing off
    assert transport.attempts == 1
    later = datetime.now(UTC) + timedelta(seconds=3)
    assert await outbox.claim_due(later) == message()


async def test_without_smtp_identity_refuses_to_start_outside_the_local_stack() -> None:
    component = MailSenderComponent(
        MailSender(InMemoryMailOutbox(), None), IdentitySettings(environment="test")
    )
    with pytest.raises(ConfigurationError, match="IDENTITY_SMTP_HOST"):
        await component.start()


async def test_the_local_stack_may_wait_for_a_mail_server(tmp_path) -> None:
    settings = IdentitySettings(environment="development", host="127.0.0.1", state_dir=tmp_path)
    sender = MailSender(InMemoryMailOutbox(), None)
    await MailSenderComponent(sender, settings).start()  # starts; mail waits in the outbox
    await sender.stop()
