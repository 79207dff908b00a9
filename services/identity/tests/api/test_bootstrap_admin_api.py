"""The first admin from IDENTITY_BOOTSTRAP_ADMIN_EMAIL / _PASSWORD, once, whatever the restarts."""

from __future__ import annotations

import pytest

from mmgen.identity.testing import passphrase, running, stored_events, unique_email
from mmgen.platform import ConfigurationError


async def test_bootstrap_admin_is_created_once(settings_factory) -> None:
    email, password = unique_email("boot"), passphrase()
    settings = settings_factory(bootstrap_admin_email=email, bootstrap_admin_password=password)
    async with running(settings) as svc:
        tokens = await svc.login(email, password)
        me = await svc.client.get(
            "/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.json()["role"] == "admin"
        registered = await stored_events(svc, event_type="identity.UserRegistered")
        assert [d["data"]["registered_by"] for d in registered] == ["bootstrap"]
        # Asking again (what every later start does) creates nothing.
        again = await svc.identity.accounts.ensure_admin(email, password, "x", source="bootstrap")
        assert again is None


async def test_bootstrap_admin_with_a_weak_password_refuses_to_start(settings_factory) -> None:
    settings = settings_factory(
        bootstrap_admin_email=unique_email("boot"), bootstrap_admin_password="admin"
    )
    with pytest.raises(ConfigurationError):
        async with running(settings):
            pass
