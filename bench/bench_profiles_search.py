"""Benchmark of profile search at 100,000 published profiles, beside an indexed equality lookup.

Starts its own database (SecantusDB, on disk in a temporary folder, through the launcher of
`mmgen up`) and builds 100,000 published profiles of synthetic creators (names, categories,
cities and skills with skewed popularity, languages, bios, experience, portfolio, and
sensitive details) with the service's own code: `index_tokens` for the tokens, the
documents `MongoProfileReadModel.put` writes for the rows, `MongoSearchIndex.add_new` for
the postings (bulk, without transactions — the build is not what is measured; the posting
indexes are built afterwards by `ensure_indexes`). Then, in the same run, it measures
p50/p95/p99 of:
- an indexed equality lookup: a profile row by id (`MongoProfileReadModel.get`, and the bare
  `find_one` beside it);
- a skill + city search (`search_profiles`, 20 per page, most recently listed first);
- a `q` search of two words (relevance then recency);
- for context: a category-only search (the largest term) and a search without filters.
Queries are drawn at random with the popularity of the data. Each kind reports how many
profiles came back and how many postings were read. Results go to
bench/results/profiles_search.json with the machine (load average before and after), the
database settings and the commit.

Usage: uv run python bench/bench_profiles_search.py [--profiles N] [--samples S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _machine import machine_info, rss_peak_mb
from _stats import percentiles
from pymongo import AsyncMongoClient

from mmgen.localstack.components import start_database
from mmgen.localstack.ports import free_port
from mmgen.profiles.adapters.mongo import MongoProfileReadModel, MongoSearchIndex
from mmgen.profiles.adapters.read_models import IndexEntry, Posting, ProfileRow, epoch_ms
from mmgen.profiles.domain.profile import ProfileDetails, SensitiveDetails
from mmgen.profiles.domain.reveal import Viewer
from mmgen.profiles.domain.search import SearchQuery, index_tokens
from mmgen.profiles.service_layer.search import SearchLimits, search_profiles
from mmgen.profiles.settings import ProfilesSettings

HOST = "127.0.0.1"
RESULTS = Path(__file__).parent / "results" / "profiles_search.json"
AIM_P95_MS = 100.0
BUILD_BATCH = 5_000

FIRST = [
    "Mia",
    "Noa",
    "Lea",
    "Zoe",
    "Lina",
    "Ines",
    "Chloe",
    "Emma",
    "Jade",
    "Louise",
    "Alice",
    "Lou",
    "Anna",
    "Eva",
    "Rose",
    "Nina",
    "Julia",
    "Clara",
    "Sarah",
    "Elena",
    "Sofia",
    "Maya",
    "Lena",
    "Iris",
    "Ella",
    "Luna",
    "Mila",
    "Nora",
    "Alba",
    "Olivia",
    "Hugo",
    "Leo",
    "Louis",
    "Noah",
    "Jules",
    "Adam",
    "Lucas",
    "Nathan",
    "Ethan",
    "Arthur",
    "Paul",
    "Tom",
    "Sacha",
    "Gabriel",
    "Raphael",
    "Mael",
    "Liam",
    "Eden",
    "Theo",
    "Oscar",
    "Malo",
    "Aaron",
    "Axel",
    "Victor",
    "Marius",
    "Samuel",
    "Timeo",
    "Robin",
    "Elio",
    "Nael",
    "Kais",
    "Ilyes",
    "Amir",
    "Ayoub",
    "Yanis",
    "Mohamed",
    "Rayan",
    "Ibrahim",
    "Ismael",
    "Amine",
    "Camille",
    "Charlie",
    "Alex",
    "Sasha",
    "Maxime",
    "Noe",
    "Andrea",
    "Eliott",
]
LAST = [
    "".join(syllables)
    for syllables in (
        random.Random(11).sample(
            [
                "ber",
                "dur",
                "mar",
                "lau",
                "ren",
                "vin",
                "cos",
                "tel",
                "man",
                "rou",
                "gar",
                "fon",
                "del",
                "pic",
            ],
            3,
        )
        for _ in range(400)
    )
]
CITIES = [
    "Paris",
    "Lyon",
    "Marseille",
    "Toulouse",
    "Nice",
    "Nantes",
    "Strasbourg",
    "Montpellier",
    "Bordeaux",
    "Lille",
    "Rennes",
    "Reims",
    "Saint-Étienne",
    "Toulon",
    "Le Havre",
    "Grenoble",
    "Dijon",
    "Angers",
    "Nîmes",
    "Clermont-Ferrand",
    "Brest",
    "Tours",
    "Limoges",
    "Amiens",
    "Perpignan",
    "Metz",
    "Besançon",
    "Orléans",
    "Rouen",
    "Mulhouse",
    "Caen",
    "Nancy",
    "Bruxelles",
    "Genève",
    "Lausanne",
    "London",
    "Berlin",
    "Madrid",
    "Milano",
    "Barcelona",
]
SKILLS = [
    "Runway",
    "Editorial",
    "Commercial",
    "Fitness",
    "Swimwear",
    "Lingerie",
    "Beauty",
    "Hand modelling",
    "Parts modelling",
    "Catalogue",
    "E-commerce",
    "Showroom",
    "Promotional events",
    "Brand ambassador",
    "Hostessing",
    "Sampling",
    "Street marketing",
    "Trade shows",
    "Flyering",
    "Event staffing",
    "Product demos",
    "Retail promotion",
    "Nightlife promotion",
    "Festival promotion",
    "Instagram",
    "TikTok",
    "YouTube",
    "Twitch",
    "Podcasting",
    "Photography",
    "Videography",
    "Video editing",
    "Copywriting",
    "Blogging",
    "UGC",
    "Livestreaming",
    "Acting",
    "Dancing",
    "Singing",
    "Voice over",
    "Makeup",
    "Hair styling",
    "Styling",
    "Art direction",
    "Choreography",
    "Yoga",
    "Pilates",
    "Martial arts",
    "Skateboarding",
    "Surfing",
    "Cooking",
    "Travel",
    "Gaming",
    "Tech reviews",
    "Fashion",
    "Luxury",
    "Sportswear",
    "Streetwear",
    "Sustainability",
    "Parenting",
]
LANGUAGES = ["fr", "en", "de", "es", "it", "pt", "pt-br", "nl", "pl", "sv", "ja", "zh"]
TITLES = [
    "Model",
    "Runway model",
    "Brand ambassador",
    "Promoter",
    "Event host",
    "Content creator",
    "Presenter",
    "Influencer",
    "Photographer",
    "Stylist",
    "Dancer",
    "Actor",
    "Campaign lead",
    "Host",
    "Creative",
]
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ra",
    "ne",
    "to",
    "su",
    "vi",
    "de",
    "la",
    "ro",
    "ma",
    "si",
    "no",
    "te",
    "pa",
    "ri",
    "ju",
    "be",
    "ga",
    "fe",
    "zo",
    "ly",
]


def pseudo_words(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    found: set[str] = set()
    while len(found) < count:
        found.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(found)


BIO_WORDS = pseudo_words(400, 3)
ORGS = [w.capitalize() for w in pseudo_words(60, 5)]


def zipf_weights(n: int, s: float = 1.0) -> list[float]:
    return [1 / (rank**s) for rank in range(1, n + 1)]


CITY_WEIGHTS = zipf_weights(len(CITIES), 0.9)
SKILL_WEIGHTS = zipf_weights(len(SKILLS), 0.6)
BIO_WEIGHTS = zipf_weights(len(BIO_WORDS), 1.0)
LANGUAGE_WEIGHTS = zipf_weights(len(LANGUAGES), 1.2)


def make_profile(rng: random.Random, n: int) -> tuple[ProfileDetails, SensitiveDetails]:
    first, last = rng.choice(FIRST), rng.choice(LAST).capitalize()
    city = rng.choices(CITIES, CITY_WEIGHTS)[0]
    skills = sorted(set(rng.choices(SKILLS, SKILL_WEIGHTS, k=rng.randint(2, 5))))
    languages = sorted(set(rng.choices(LANGUAGES, LANGUAGE_WEIGHTS, k=rng.randint(1, 3))))
    bio = " ".join(rng.choices(BIO_WORDS, BIO_WEIGHTS, k=rng.randint(8, 16))).capitalize() + "."
    start = date(2015, 1, 1) + timedelta(days=rng.randrange(3000))
    details = ProfileDetails.model_validate(
        {
            "display_name": f"{first} {last}",
            "category": rng.choices(["model", "promoter", "content_creator"], [45, 30, 25])[0],
            "bio": bio,
            "skills": skills,
            "city": city,
            "languages": languages,
            "rates": rng.choice(["under_150", "150_300", "300_600", "600_1200", None]),
            "experience": [
                {
                    "title": rng.choice(TITLES),
                    "organisation": rng.choice(ORGS),
                    "from": (start + timedelta(days=200 * i)).isoformat(),
                }
                for i in range(rng.randint(0, 3))
            ],
            "portfolio": [
                {
                    "title": f"{rng.choice(SKILLS)} {rng.choice(BIO_WORDS)}",
                    "url": f"https://example.com/{n}/{i}",
                }
                for i in range(rng.randint(0, 3))
            ],
        }
    )
    sensitive = SensitiveDetails.model_validate(
        {
            "phone": f"+33 6 {rng.randrange(10**8):08d}",
            "email": f"{first.lower()}.{last.lower()}{n}@example.org",
            "date_of_birth": (date(1975, 1, 1) + timedelta(days=rng.randrange(11000))).isoformat(),
            "address": f"{rng.randint(1, 200)} rue {rng.choice(LAST).capitalize()}, {city}",
        }
    )
    return details, sensitive


class CountingIndex(MongoSearchIndex):
    """The real index, counting what one search reads (postings by window, keys looked up)."""

    postings_read = 0
    keys_looked_up = 0

    async def window(self, token: str, low: int, high: int) -> list[Posting]:
        found = await super().window(token, low, high)
        self.postings_read += len(found)
        return found

    async def lookup(self, keys: Sequence[tuple[str, str]]) -> list[Posting]:
        self.keys_looked_up += len(keys)
        return await super().lookup(keys)


async def build(db: Any, count: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    rows = MongoProfileReadModel(db)
    index = MongoSearchIndex(db)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    postings = 0
    ids: list[str] = []
    tokens_s = rows_s = index_s = 0.0
    for start in range(0, count, BUILD_BATCH):
        t = time.perf_counter()
        batch: list[tuple[ProfileRow, IndexEntry]] = []
        for n in range(start, min(count, start + BUILD_BATCH)):
            details, sensitive = make_profile(rng, n)
            creator = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            listed = base + timedelta(seconds=n * 60)
            row = ProfileRow(
                creator,
                3,
                details,
                published=True,
                sensitive_event_id=str(uuid.uuid4()),
                created_at=listed,
                updated_at=listed,
                published_at=listed,
            )
            batch.append(
                (row, IndexEntry(creator, index_tokens(details, sensitive), epoch_ms(listed)))
            )
            ids.append(creator)
        tokens_s += time.perf_counter() - t
        t = time.perf_counter()
        # The documents `put` writes, inserted in bulk (every row is new).
        docs = [{"_id": r.creator_id, **rows.fields(r), "closed": False} for r, _ in batch]
        await db["profiles"].insert_many(docs, ordered=False)
        rows_s += time.perf_counter() - t
        t = time.perf_counter()
        postings += await index.add_new([entry for _, entry in batch])
        index_s += time.perf_counter() - t
        print(f"  {start + len(batch)} profiles, {postings} postings", flush=True)
    t = time.perf_counter()
    await index.ensure_indexes()
    index_build_s = time.perf_counter() - t
    return {
        "profiles": count,
        "postings": postings,
        "postings_per_profile": round(postings / count, 1),
        "tokens": await db["profile_token_heads"].count_documents({}),
        "seconds": round(time.perf_counter() - started, 1),
        "tokens_cpu_s": round(tokens_s, 1),
        "rows_insert_s": round(rows_s, 1),
        "postings_insert_s": round(index_s, 1),
        "posting_index_build_s": round(index_build_s, 1),
        "ids": ids,
    }


async def measure(
    samples: int, run: Callable[[random.Random], Awaitable[int]], seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    for _ in range(10):
        await run(rng)
    times: list[float] = []
    results: list[int] = []
    for _ in range(samples):
        t = time.perf_counter()
        results.append(await run(rng))
        times.append(time.perf_counter() - t)
    return percentiles(times) | {"mean_results": round(statistics.fmean(results), 1)}


async def run_bench(count: int, samples: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="bench-profiles-search-"))
    database = start_database(
        HOST, free_port(), folder / "data", folder / "db.log", sync_on_commit=False
    )
    client: Any = AsyncMongoClient(database.extra["uri"], tz_aware=True)
    try:
        db = client["bench_profiles_search"]
        print(f"building {count} published profiles", flush=True)
        built = await build(db, count, seed=7)
        ids = built.pop("ids")
        settings = ProfilesSettings(environment="test")
        limits = SearchLimits.of(settings)
        rows = MongoProfileReadModel(db)
        index = CountingIndex(db, lookup_chunk=settings.search_lookup_chunk)
        viewer = Viewer(str(uuid.uuid4()), "client")
        reads: dict[str, list[tuple[int, int]]] = {}

        def searcher(
            kind: str, query: Callable[[random.Random], SearchQuery]
        ) -> Callable[[random.Random], Awaitable[int]]:
            async def run(rng: random.Random) -> int:
                index.postings_read = index.keys_looked_up = 0
                page = await search_profiles(
                    index,
                    rows,
                    viewer=viewer,
                    query=query(rng),
                    limit=20,
                    limits=limits,
                )
                reads.setdefault(kind, []).append((index.postings_read, index.keys_looked_up))
                return len(page.items)

            return run

        async def by_id(rng: random.Random) -> int:
            return int(await rows.get(rng.choice(ids)) is not None)

        async def bare_by_id(rng: random.Random) -> int:
            return int(await db["profiles"].find_one({"_id": rng.choice(ids)}) is not None)

        def skill_city(rng: random.Random) -> SearchQuery:
            return SearchQuery(
                skill=rng.choices(SKILLS, SKILL_WEIGHTS)[0],
                city=rng.choices(CITIES, CITY_WEIGHTS)[0],
            )

        def q_words(rng: random.Random) -> SearchQuery:
            skill_word = rng.choices(SKILLS, SKILL_WEIGHTS)[0].split()[0]
            return SearchQuery(q=f"{skill_word} {rng.choices(BIO_WORDS, BIO_WEIGHTS)[0]}")

        runs = {
            "equality_lookup_by_id": by_id,
            "equality_lookup_by_id_bare_find_one": bare_by_id,
            "skill_city": searcher("skill_city", skill_city),
            "q_two_words": searcher("q_two_words", q_words),
            "category_only": searcher(
                "category_only",
                lambda rng: SearchQuery(
                    category=rng.choice(["model", "promoter", "content_creator"])
                ),
            ),
            "no_filter": searcher("no_filter", lambda rng: SearchQuery()),
        }
        measured: dict[str, Any] = {}
        for seed, (name, run) in enumerate(runs.items()):
            print(f"measuring {name}", flush=True)
            measured[name] = await measure(samples, run, seed)
            if name in reads:
                taken = reads[name][-samples:]
                measured[name]["mean_postings_read"] = round(
                    statistics.fmean(p for p, _ in taken), 1
                )
                measured[name]["mean_keys_looked_up"] = round(
                    statistics.fmean(k for _, k in taken), 1
                )
        worst = max(measured["skill_city"]["p95_ms"], measured["q_two_words"]["p95_ms"])
        return {
            "benchmark": "profiles_search",
            "recorded_at": datetime.now(UTC).isoformat(),
            "build": built,
            "database": {
                "server": "SecantusDB",
                "storage": "on disk (temporary folder)",
                "sync_on_commit": False,
                "note": "bulk build without transactions; measured reads do not depend on sync",
                "rss_peak_mb": rss_peak_mb(database.popen.pid) if database.popen else None,
            },
            "search_limits": {
                "page_size": 20,
                "window": limits.window,
                "max_postings": limits.max_postings,
                "max_candidates": limits.max_candidates,
                "lookup_chunk": settings.search_lookup_chunk,
            },
            "queries": measured,
            "aim": {"search_p95_ms_at_most": AIM_P95_MS},
            "meets_aim": worst <= AIM_P95_MS,
            "bench_process_rss_peak_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            "machine": machine_info(
                ("pymongo", "secantusdb", "pydantic"),
                ("bench/bench_profiles_search.py", "services/profiles/src"),
                load_before,
            ),
        }
    finally:
        await client.close()
        database.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(run_bench(args.profiles, args.samples))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2, default=str))


if __name__ == "__main__":
    main()
