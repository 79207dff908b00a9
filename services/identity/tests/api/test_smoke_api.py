"""The app starts on the real database and broker, serves a sign-in, and /readyz tells when the
relay or the inbox is not running."""

from __future__ import annotations

from mmgen.events.topics import ensure_topics
from mmgen.runtime.testing import assert_problem, eventually
from services.identity.tests.identity_kit import identity_settings, running


async def test_register_login_me_and_readiness(infra) -> None:
    async with running(identity_settings(infra)) as svc:
        user = await svc.user_with_token()
        me = await svc.client.get("/users/me", headers=user["auth"])
        assert me.status_code == 200, me.text
        assert me.json()["email"] == user["email"]
        ready = await svc.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert set(checks) == {"database", "broker", "relay", "inbox", "projections"}
        assert checks["inbox"] == "consuming" and "accounts lag" in checks["projections"]
        assert (await svc.client.get("/healthz")).status_code == 200
        metrics = await svc.client.get("/metrics")
        assert "mmgen_events_relay_published" in metrics.text

        runtime = svc.identity.runtime
        assert runtime.relay is not None and runtime.broker is not None
        await runtime.relay.stop()  # the relay and the inbox gone
        await runtime.broker.stop()

        async def failing() -> list[str]:
            response = await svc.client.get("/readyz")
            return sorted(response.json().get("failing", [])) if response.status_code == 503 else []

        assert await eventually(failing, until=lambda names: names == ["inbox", "relay"])
        assert_problem(await svc.client.get("/readyz"), 503, "not-ready")


async def test_starts_when_a_topic_was_recreated_with_another_count(infra) -> None:
    """After a local broker restart a client may re-create a topic with its own partition count;
    a development/test identity still starts (production refuses: misconfiguration)."""
    settings = identity_settings(infra)
    await ensure_topics(infra.kafka_bootstrap, [settings.topic("retention.commands")], partitions=1)
    async with running(settings) as svc:
        assert (await svc.client.get("/readyz")).status_code == 200
