"""Adapters of the consent service: read-model ports with Mongo and in-memory adapters, the
read-model projection, Prometheus counters."""
