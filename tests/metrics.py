"""Reading a running service's `/metrics` (Prometheus exposition) in the system tests."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def total(exposition: str, sample: str, **labels: str) -> float:
    """The sum of `sample` (e.g. `http_requests_total`) over the series matching `labels`."""
    return sum(
        s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def read(http: httpx.AsyncClient, base_url: str) -> str:
    response = await http.get(f"{base_url}/metrics")
    assert response.status_code == 200, response.text
    return response.text


def by_label(exposition: str, sample: str, label: str, **labels: str) -> dict[str, float]:
    """`sample` over the series matching `labels`, summed per value of `label`."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                sums[s.labels[label]] = sums.get(s.labels[label], 0.0) + s.value
    return sums
