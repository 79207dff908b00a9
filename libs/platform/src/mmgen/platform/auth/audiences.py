"""Which services a token may be used at (its `aud`), by role: one table for the whole system.

Every service verifies its own name as the audience (`ServiceSettings.jwt_audience` defaults
to `service_name`), so a token identity issued for `projects` is refused by `profiles`: a
token that leaks from one service cannot be replayed at another (RFC 8725 §3.9). Identity
issues a token for the audiences asked, within the role's allowance below, by default all of
them; asking for one outside it is refused (`AudienceNotAllowedError`) and nothing is issued.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from mmgen.platform.auth.principal import Role

IDENTITY = "identity"
PROJECTS = "projects"
PROFILES = "profiles"
CONSENT = "consent"
RETENTION = "retention"
CONSOLE = "console"

#: Every service that verifies identity's access tokens (the witness takes none).
SERVICE_AUDIENCES: tuple[str, ...] = (IDENTITY, PROJECTS, PROFILES, CONSENT, RETENTION, CONSOLE)

_PLATFORM = frozenset({IDENTITY, PROJECTS, PROFILES, CONSENT, RETENTION})

#: The audiences each role may hold. The console is the compliance officers' tool (it admits
#: no other role); service tokens are for `/internal/` calls between the back-end services.
ROLE_AUDIENCES: Mapping[Role, frozenset[str]] = MappingProxyType(
    {
        Role.client: _PLATFORM,
        Role.creator: _PLATFORM,
        Role.staff: _PLATFORM,
        Role.compliance: _PLATFORM | {CONSOLE},
        Role.admin: _PLATFORM,
        Role.service: _PLATFORM,
    }
)


class AudienceNotAllowedError(ValueError):
    """A token was asked for an audience its role may not hold (or that does not exist)."""

    def __init__(self, role: str, refused: Iterable[str]) -> None:
        self.role = role
        self.refused = tuple(sorted(set(refused)))
        allowed = ", ".join(allowed_audiences(role)) or "none"
        what = ", ".join(self.refused) if self.refused else "no audience at all"
        super().__init__(f"a {role} token cannot be issued for {what} (allowed: {allowed})")


def allowed_audiences(role: str | Role) -> tuple[str, ...]:
    """The audiences a role may hold, in `SERVICE_AUDIENCES` order (none for an unknown role)."""
    try:
        allowance = ROLE_AUDIENCES[Role(role)]
    except ValueError:
        return ()
    return tuple(name for name in SERVICE_AUDIENCES if name in allowance)


def audiences_for(role: str | Role, asked: Iterable[str] | None = None) -> list[str]:
    """The `aud` of a token of `role`: the audiences `asked` (order kept, duplicates dropped),
    or every audience the role may hold when none are asked. Anything outside the allowance →
    `AudienceNotAllowedError`; an empty request too (a token for nowhere is no token)."""
    allowance = allowed_audiences(role)
    if asked is None:
        if not allowance:
            raise AudienceNotAllowedError(str(role), ())
        return list(allowance)
    wanted = list(dict.fromkeys(asked))
    refused = [name for name in wanted if name not in allowance]
    if refused or not wanted:
        raise AudienceNotAllowedError(str(role), refused)
    return wanted
