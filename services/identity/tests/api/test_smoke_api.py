"""The app starts on the real database and broker, serves a sign-in, and /readyz tells when the
relay or the consumers are not running."""

from __future__ import annotations

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
