"""How a Kafka client authenticates and encrypts: one value every client of a service is made with.

Managed and production brokers take SASL (SCRAM) over TLS, and the deploy files run Kafka with
SCRAM users and per-service ACLs; the local broker takes PLAINTEXT. A service reads
`<PREFIX>KAFKA_SECURITY_PROTOCOL`, `_SASL_MECHANISM`, `_SASL_USERNAME`, `_SASL_PASSWORD` and
`_SSL_CAFILE` (`mmgen.runtime.settings`) into one `KafkaSecurity`, and every producer, consumer,
admin client and FastStream broker it makes takes its options from that value — so no client is
left connecting in plain text beside the others.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from mmgen.events.errors import EventsError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_FASTSTREAM_SASL = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


class KafkaSecurityError(EventsError, ValueError):
    """Kafka security settings that do not make a connection (named in the message)."""


@dataclass(frozen=True)
class KafkaSecurity:
    """Security protocol, SASL credentials and the CA that signs the brokers' certificates."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: PEM file of the CA(s) to trust for the brokers' certificates (None: the system's).
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise KafkaSecurityError(f"security protocol {self.protocol!r}: one of {PROTOCOLS}")
        if self.sasl:
            if self.mechanism not in MECHANISMS:
                raise KafkaSecurityError(
                    f"{self.protocol} needs a SASL mechanism, one of {MECHANISMS}"
                )
            if not self.username or not self.password:
                raise KafkaSecurityError(f"{self.protocol} needs a SASL username and password")
        elif self.mechanism or self.username or self.password:
            raise KafkaSecurityError(
                f"SASL settings are given but the security protocol is {self.protocol}"
            )
        if self.ca_file and not self.tls:
            raise KafkaSecurityError(f"a CA file is given but {self.protocol} uses no TLS")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (the CA file's, else the system's); None without TLS."""
        if not self.tls:
            return None
        context: ssl.SSLContext = create_ssl_context(cafile=self.ca_file)
        return context

    def client_config(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer, admin and client."""
        if self.protocol == "PLAINTEXT":
            return {}
        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            config["ssl_context"] = self.ssl_context()
        if self.sasl:
            config["sasl_mechanism"] = self.mechanism
            config["sasl_plain_username"] = self.username
            config["sasl_plain_password"] = self.password
        return config

    def faststream(self) -> BaseSecurity | None:
        """The same for a FastStream `KafkaBroker(security=...)`."""
        if self.protocol == "PLAINTEXT":
            return None
        context = self.ssl_context()
        if not self.sasl:
            return BaseSecurity(ssl_context=context, use_ssl=True)
        assert self.mechanism is not None and self.username and self.password
        return _FASTSTREAM_SASL[self.mechanism](
            self.username, self.password, ssl_context=context, use_ssl=self.tls
        )


#: The local broker's: no authentication, no TLS.
PLAINTEXT = KafkaSecurity()
