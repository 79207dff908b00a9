"""Adapters of the consent service: event store wiring, read models on MongoDB, metrics."""
