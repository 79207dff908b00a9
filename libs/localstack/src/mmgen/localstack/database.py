"""SecantusDB with a transaction lifetime of our choosing (`python -m mmgen.localstack.database`).

A client killed with SIGKILL inside a transaction never ends it: the server keeps the
transaction open, and every document it wrote stays write-locked (any other writer gets
`WriteConflict`, which `with_transaction` retries) until the server reaps it. SecantusDB
reaps a transaction once it has been idle for its transaction lifetime — 60 s, the default
of mongod's `transactionLifetimeLimitSeconds` — so one replica killed mid-commit stopped
every append of its surviving replicas for a minute (libs/localstack README, "Transactions
of a killed client"). The `secantus` command line has no option for that lifetime; its
server class takes one. This launcher takes `--transaction-lifetime-seconds` and passes
every other argument to SecantusDB's own command line unchanged.
"""

from __future__ import annotations

import argparse
import functools
import sys

#: Idle seconds after which the local database aborts a transaction nobody finishes. Far above
#: the gap between two statements of any transaction of ours (milliseconds; a statement holds
#: the transaction while it runs), far below mongod's 60 s a crashed client would cost.
TRANSACTION_LIFETIME_SECONDS = 10.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mmgen.localstack.database",
        description="SecantusDB, with a bounded transaction lifetime; other arguments go to it.",
    )
    parser.add_argument(
        "--transaction-lifetime-seconds",
        type=float,
        default=TRANSACTION_LIFETIME_SECONDS,
        help="abort a transaction idle this long (default: %(default)s)",
    )
    ours, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if ours.transaction_lifetime_seconds <= 0:
        parser.error("--transaction-lifetime-seconds must be positive")

    from secantus import cli
    from secantus.server import SecantusDBServer

    cli.SecantusDBServer = functools.partial(
        SecantusDBServer, transaction_lifetime_seconds=ours.transaction_lifetime_seconds
    )
    return cli.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
