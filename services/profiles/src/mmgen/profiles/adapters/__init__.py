"""Adapters of the profiles service: read models (ports, Mongo, in memory) and projections."""
