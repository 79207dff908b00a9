"""Use cases of the consent service; HTTP routes and Kafka handlers both end here."""
