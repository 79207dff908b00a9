"""Every refusal is counted in `access_denials_total`, anonymous or not, by route and code."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families


def denial_counts(text: str) -> dict[tuple[str, str, str, str], float]:
    counts: dict[tuple[str, str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "access_denials_total":
                labels = sample.labels
                key = (labels["route"], labels["status"], labels["code"], labels["caller"])
                counts[key] = sample.value
    return counts


async def test_each_refusal_is_counted(
    client: httpx.AsyncClient,
    token: Callable[..., str],
    auth: Callable[[str], dict[str, str]],
) -> None:
    for _ in range(3):
        assert (await client.get("/widgets/1")).status_code == 401
    for _ in range(2):
        assert (await client.get("/widgets/1", headers=auth("garbage"))).status_code == 401
    staff = auth(token("staff"))
    assert (await client.get("/subjects/s-1", headers=staff)).status_code == 403
    counts = denial_counts((await client.get("/metrics")).text)
    route = "/widgets/{widget_id}"
    assert counts[(route, "401", "unauthenticated", "anonymous")] == 3
    assert counts[(route, "401", "invalid-token", "anonymous")] == 2
    assert counts[("/subjects/{subject_id}", "403", "purpose-required", "authenticated")] == 1
