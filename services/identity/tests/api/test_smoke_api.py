"""The app starts on the real database and broker, serves a sign-in, and /readyz tells when the
relay or the consumers are not running."""

from __future__ import annotations

from mmgen.events.topics import ensure_topics
from mmgen.identity.testing import assert_problem, make_settings, running


async def test_register_login_me_and_readiness(infra) -> None:
    async with running(make_settings(infra)) as svc:
        user = await svc.user_with_token()
        me = await svc.client.get("/users/me", headers=user["auth"])
        assert me.status_code == 200, me.text
        assert me.json()["email"] == user["email"]
        ready = await svc.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {
            "database": "ok",
            "broker": "ok",
            "relay": "ok",
            "consumers": "ok",
        }
        assert (await svc.client.get("/healthz")).status_code == 200
        metrics = await svc.client.get("/metrics")
        assert "mmgen_events_relay_published" in metrics.text

        await svc.app.state.messaging.stop()  # relay and consumers gone
        problem = assert_problem(await svc.client.get("/readyz"), 503, "not-ready")
        assert sorted(problem["failing"]) == ["consumers", "relay"]


async def test_starts_when_a_topic_was_recreated_with_another_count(infra) -> None:
    """After a local broker restart a client may re-create a topic with its own partition count;
    a development/test identity still starts (production refuses: misconfiguration)."""
    settings = make_settings(infra)
    await ensure_topics(infra.kafka_bootstrap, [settings.commands_topic], partitions=1)
    async with running(settings) as svc:
        assert (await svc.client.get("/readyz")).status_code == 200
