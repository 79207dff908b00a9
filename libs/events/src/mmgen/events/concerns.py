"""Read and write concerns for what a database failover must not roll back or let be reused.

On a replica set, a write acknowledged by the primary alone (`w: 1`) can be rolled back when
another member is elected, and a read with read concern `local` can return such a write.
Where a number is handed out from what is read — the producer's `producer_seq` counter, the
relay's checkpoint and lease, the audit log's head (size, own seq), a project's message and
file numbers, the profile search index's per-token seqs — a rolled-back write means the same
number given to two different things, or a checkpoint past what any member holds. Where a
write is a promise others act on — the keystore's data keys (data sealed under a key whose
creation is rolled back is unreadable) and erasure markers (a shred rolled back is undone),
identity's account and email records (an email held twice) — a rolled-back write breaks it.
So those collections read and write with `majority`, and their transactions commit with it:
what they read was acknowledged by a majority, and a write is acknowledged only once a
majority has it. The drivers' defaults are left alone everywhere else.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pymongo.client_session import TransactionOptions
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

MAJORITY_READS = ReadConcern("majority")
MAJORITY_WRITES = WriteConcern("majority")
DURABLE_TRANSACTIONS = TransactionOptions(
    read_concern=MAJORITY_READS, write_concern=MAJORITY_WRITES
)

C = TypeVar("C")


def durable(collection: C) -> C:
    """The same collection reading and writing with `majority`."""
    options: Any = collection
    result: C = options.with_options(read_concern=MAJORITY_READS, write_concern=MAJORITY_WRITES)
    return result


def durable_session(client: Any) -> Any:
    """A session whose transactions read and commit with `majority` (async context manager)."""
    return client.start_session(default_transaction_options=DURABLE_TRANSACTIONS)


__all__ = [
    "DURABLE_TRANSACTIONS",
    "MAJORITY_READS",
    "MAJORITY_WRITES",
    "durable",
    "durable_session",
]
