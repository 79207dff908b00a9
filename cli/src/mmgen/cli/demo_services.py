"""Demo data for projects, profiles and retention, seeded through their public APIs.

A realistic slice of the marketplace: three creators publish profiles (Mia shares her
sensitive details under consent); Acme's client opens a project, brings in Mia, Leo and a
staff member, and the team exchanges messages and a moodboard; Acme discloses the team's
contact details to its payment provider; staff read the project for support; Acme reads
Mia's profile, whose sensitive part the reveal rule shows because they share a project and
she consented; Zoe asks for a copy of her data. Every step is idempotent: looked up first, or
recorded once in the demo state (`DemoState.once`).

The services learn about accounts, consents and memberships from each other's events, so a
step that needs that knowledge is retried until it holds (`_until`), with a deadline.
"""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmgen.cli.demo import Seeder

#: How long a step waits for another service's events to reach the service it calls.
PROPAGATION_SECONDS = 30.0
PROJECT_TITLE = "Summer campaign shoot — Stockholm"

#: A one-pixel PNG: the projects service checks a file's first bytes against its declared type.
MOODBOARD_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

PROFILES: dict[str, dict[str, Any]] = {
    "creator.mia": {
        "display_name": "Mia Rossi",
        "category": "model",
        "bio": "Editorial and runway model; campaigns for Nordic fashion houses.",
        "skills": ["Runway", "Editorial", "Swimwear"],
        "city": "Milan",
        "languages": ["it", "en"],
        "rates": "600_1200",
        "experience": [
            {"title": "Runway model", "organisation": "Casa Moda", "from": "2019-09-01"}
        ],
        "portfolio": [{"title": "Spring lookbook", "url": "https://example.com/mia/spring"}],
        "sensitive": {
            "phone": "+39 02 5550 1234",
            "email": "mia.rossi@example.org",
            "date_of_birth": "1997-05-21",
            "address": "Via Torino 8, 20123 Milano",
            "measurements": {"height_cm": 177, "waist_cm": 62},
        },
    },
    "creator.leo": {
        "display_name": "Leo Martin",
        "category": "promoter",
        "bio": "Event promoter for product launches and festivals.",
        "skills": ["Brand activation", "Hosting"],
        "city": "Paris",
        "languages": ["fr", "en"],
        "rates": "150_300",
        "experience": [],
        "portfolio": [],
        "sensitive": {"phone": "+33 1 5550 9876"},
    },
    "creator.zoe": {
        "display_name": "Zoe Okafor",
        "category": "content_creator",
        "bio": "Dance and lifestyle videos; short-form campaigns.",
        "skills": ["Dance", "Video editing"],
        "city": "London",
        "languages": ["en"],
        "rates": "300_600",
        "experience": [],
        "portfolio": [{"title": "Channel", "url": "https://example.com/zoe"}],
        "sensitive": {},
    },
}

MESSAGES = (
    ("client.acme", "Welcome aboard! Call sheet and moodboard follow; shoot day is 12 June."),
    ("creator.mia", "Thanks Ada — confirmed for 12 June. Is hair and make-up on set?"),
    ("client.acme", "Yes, from 07:30. Leo will run the launch event the evening after."),
)


class _NotYet(Exception):
    """A step's precondition (another service's events) has not arrived yet."""


def _until(step: Callable[[], Any], what: str, timeout: float = PROPAGATION_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return step()
        except _NotYet as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what}: still {exc} after {timeout:.0f} s") from exc
            time.sleep(0.5)


def seed_profiles(seeder: Seeder) -> None:
    """Each creator's profile, published; written only when the creator has none yet."""
    for key, profile in PROFILES.items():
        current = seeder.call("GET", "profiles", "/profiles/me", as_=key, ok=(200, 404))
        if current.status_code == 404:
            seeder.call("PUT", "profiles", "/profiles/me", as_=key, json=profile)
            seeder.say(f"profile of {profile['display_name']} written")
        seeder.call("POST", "profiles", "/profiles/me/publish", as_=key)


def demo_project(seeder: Seeder) -> str:
    """The demo project's id: Acme's project of that title, created on the first run."""
    mine = seeder.call("GET", "projects", "/projects", as_="client.acme").json()
    for item in mine["items"]:
        if item["title"] == PROJECT_TITLE:
            return str(item["project_id"])
    created = seeder.call(
        "POST",
        "projects",
        "/projects",
        as_="client.acme",
        json={
            "title": PROJECT_TITLE,
            "requirements": "Two models and a promoter; one shoot day and the launch evening.",
            "budget": "5k_20k",
        },
    ).json()
    seeder.say(f"project {PROJECT_TITLE!r} created")
    return str(created["project_id"])


def seed_projects(seeder: Seeder) -> None:
    project = demo_project(seeder)
    base = f"/projects/{project}"
    for key, role in (("creator.mia", "creator"), ("creator.leo", "creator"), ("staff", "staff")):
        member = seeder.user_id(key)

        def add(member: str = member, role: str = role) -> None:
            response = seeder.call(
                "POST",
                "projects",
                f"{base}/members",
                as_="client.acme",
                ok=(201, 409, 422),
                json={"user_id": member, "role": role},
            )
            if response.status_code == 422:  # identity's account events not there yet
                raise _NotYet("unknown to projects")

        _until(add, f"adding {key} to the demo project")
    for i, (author, text) in enumerate(MESSAGES):
        post = functools.partial(
            seeder.call, "POST", "projects", f"{base}/messages", as_=author, json={"text": text}
        )
        seeder.state.once(f"projects.message:{project}:{i}", post)
    seeder.state.once(
        f"projects.file:{project}",
        lambda: seeder.call(
            "POST",
            "projects",
            f"{base}/files",
            as_="client.acme",
            files={"file": ("moodboard.png", MOODBOARD_PNG, "image/png")},
        ),
    )
    team = [seeder.user_id("creator.mia"), seeder.user_id("client.acme")]
    seeder.state.once(
        f"projects.disclosure:{project}",
        lambda: seeder.call(
            "POST",
            "projects",
            f"{base}/disclosures",
            as_="client.acme",
            json={
                "recipient": {"type": "payment_provider", "name": "PayCo Ltd"},
                "purpose": "payment_processing",
                "legal_basis": "contract",
                "categories": ["contact", "payment"],
                "subject_ids": team,
            },
        ),
    )
    seeder.state.once(
        f"projects.read:{seeder.user_id('staff')}:{project}",
        lambda: seeder.call(
            "GET", "projects", f"{base}/messages", as_="staff", headers={"X-Purpose": "support"}
        ),
    )
    seeder.say(f"project {PROJECT_TITLE!r}: members, messages, a file, a disclosure")


def seed_reveal(seeder: Seeder) -> None:
    """Acme reads Mia's profile; her sensitive part shows once profiles knows they share a
    project and she consented (events from projects and consent)."""
    mia = seeder.user_id("creator.mia")

    def read() -> None:
        profile = seeder.call("GET", "profiles", f"/profiles/{mia}", as_="client.acme").json()
        if not profile.get("revealed"):
            raise _NotYet("not revealed")

    seeder.state.once(
        f"profiles.reveal:{seeder.user_id('client.acme')}:{mia}",
        lambda: _until(read, "the reveal of Mia's profile to Acme"),
    )


def seed_retention(seeder: Seeder) -> None:
    """Zoe asks for a copy of her data, once (retention answers it within seconds, after which
    a new submission would be a new request)."""
    zoe = seeder.user_id("creator.zoe")
    seeder.state.once(
        f"retention.access:{zoe}",
        lambda: seeder.call(
            "POST", "retention", "/privacy-requests", as_="creator.zoe", json={"type": "access"}
        ),
    )
    seeder.say("access request filed for Zoe Okafor")


#: Steps per service, in the order the run takes them (each needs the accounts first).
STEPS: tuple[tuple[str, tuple[str, ...], Callable[[Seeder], None]], ...] = (
    ("profiles", ("profiles",), seed_profiles),
    ("projects", ("projects",), seed_projects),
    ("reveal", ("profiles", "projects", "consent"), seed_reveal),
    ("retention", ("retention",), seed_retention),
)
