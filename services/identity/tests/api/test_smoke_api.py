"""Quick end-to-end check: the app starts on the real database and broker and serves a login."""

from __future__ import annotations

from mmgen.identity.testing import make_settings, running


async def test_register_login_me(infra) -> None:
    async with running(make_settings(infra)) as svc:
        user = await svc.user_with_token()
        me = await svc.client.get("/users/me", headers=user["auth"])
        assert me.status_code == 200, me.text
        assert me.json()["email"] == user["email"]
        ready = await svc.client.get("/readyz")
        assert ready.status_code == 200, ready.text
