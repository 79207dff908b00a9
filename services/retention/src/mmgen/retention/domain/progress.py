"""Erasure progress: from acknowledgements and footprints to what a request may claim.

Nothing reports success early. For the latest erasure order of a request, each expected
service is:

- ``pending``: no acknowledgement yet, still within the bound;
- ``to_retry``: no acknowledgement although the bound has passed since the order;
- ``acknowledged``: its ``SubjectErased`` is in the audit log, its footprint not yet read;
- ``residual``: acknowledged, but its footprint still shows readable personal data outside
  the held categories (retried once the bound has passed since the acknowledgement);
- ``clean``: acknowledged, and its footprint shows zero readable personal data outside the
  held categories.

The request is ``verified`` only when every expected service is ``clean`` and nothing is
held; ``partially_completed`` when every service is ``clean`` but categories are held (the
holds are named with their reasons); otherwise it stays in progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from mmgen.retention.domain.events import (
    AcknowledgementData,
    ErasureOrdered,
    HeldCategoryData,
    ServiceCheck,
)
from mmgen.runtime.contract import Footprint

Outcome = Literal["in_progress", "partially_completed", "verified"]


class ServiceState(StrEnum):
    pending = "pending"
    to_retry = "to_retry"
    acknowledged = "acknowledged"
    residual = "residual"
    clean = "clean"


@dataclass(frozen=True, slots=True)
class ServiceProgress:
    service: str
    state: ServiceState
    retry: bool
    acknowledgement: AcknowledgementData | None
    footprint: Footprint | None
    readable_outside_held: int | None
    detail: str

    def check(self, held: frozenset[str]) -> ServiceCheck:
        if self.footprint is None or self.readable_outside_held is None:
            raise ValueError(f"{self.service} has no footprint to record")
        return ServiceCheck(
            service=self.service,
            readable_outside_held=self.readable_outside_held,
            readable_held=sum(
                c.readable_personal_fields
                for name, c in self.footprint.categories.items()
                if name in held
            ),
            key_erased=self.footprint.key_erased,
        )


@dataclass(frozen=True, slots=True)
class ErasureProgress:
    outcome: Outcome
    services: tuple[ServiceProgress, ...]
    held: tuple[HeldCategoryData, ...]

    @property
    def to_retry(self) -> tuple[str, ...]:
        return tuple(s.service for s in self.services if s.retry)

    @property
    def waiting_for(self) -> tuple[str, ...]:
        return tuple(s.service for s in self.services if s.state is not ServiceState.clean)

    def checks(self) -> list[ServiceCheck]:
        held = frozenset(h.category for h in self.held)
        return [s.check(held) for s in self.services]


def readable_outside(footprint: Footprint, held: frozenset[str]) -> int:
    """Readable personal fields of a footprint in categories not under a hold.

    Fields the service counts in its total but in no category are counted as outside every
    hold: a service that cannot say where data lies cannot claim it is held.
    """
    outside = sum(
        c.readable_personal_fields for name, c in footprint.categories.items() if name not in held
    )
    categorised = sum(c.readable_personal_fields for c in footprint.categories.values())
    return outside + max(0, footprint.readable_personal_fields - categorised)


def acknowledgement_counts(ack: AcknowledgementData, order: ErasureOrdered) -> bool:
    """Whether an acknowledgement answers this order (not an earlier one with other holds)."""
    if ack.command_id is not None:
        return ack.command_id == order.command_id
    return ack.acknowledged_at >= order.ordered_at


def assess_erasure(
    *,
    subject_id: str,
    order: ErasureOrdered,
    acknowledgements: Mapping[str, AcknowledgementData],
    footprints: Mapping[str, Footprint],
    now: datetime,
    ack_timeout: timedelta,
) -> ErasureProgress:
    """The state of every expected service, and what the request may claim."""
    held = frozenset(h.category for h in order.categories_held)
    states: list[ServiceProgress] = []
    for service in order.services:
        ack = acknowledgements.get(service)
        if ack is not None and not acknowledgement_counts(ack, order):
            ack = None
        if ack is None:
            late = now - order.ordered_at >= ack_timeout
            states.append(
                ServiceProgress(
                    service,
                    ServiceState.to_retry if late else ServiceState.pending,
                    late,
                    None,
                    None,
                    None,
                    (
                        f"no acknowledgement {int((now - order.ordered_at).total_seconds())} s "
                        f"after the order (bound {int(ack_timeout.total_seconds())} s)"
                        if late
                        else "waiting for its SubjectErased in the audit log"
                    ),
                )
            )
            continue
        footprint = footprints.get(service)
        if footprint is not None and (
            footprint.service != service or footprint.subject_id != subject_id
        ):
            footprint = None
        if footprint is None:
            states.append(
                ServiceProgress(
                    service,
                    ServiceState.acknowledged,
                    False,
                    ack,
                    None,
                    None,
                    f"acknowledged at audit seq {ack.audit_seq}; footprint not read yet",
                )
            )
            continue
        outside = readable_outside(footprint, held)
        if outside:
            late = now - ack.acknowledged_at >= ack_timeout
            states.append(
                ServiceProgress(
                    service,
                    ServiceState.residual,
                    late,
                    ack,
                    footprint,
                    outside,
                    f"footprint shows {outside} readable personal fields outside held categories",
                )
            )
            continue
        states.append(
            ServiceProgress(
                service,
                ServiceState.clean,
                False,
                ack,
                footprint,
                0,
                "no readable personal data outside held categories",
            )
        )
    outcome: Outcome = "in_progress"
    if states and all(s.state is ServiceState.clean for s in states):
        outcome = "partially_completed" if held else "verified"
    return ErasureProgress(outcome, tuple(states), tuple(order.categories_held))
