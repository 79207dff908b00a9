"""Adapters of the retention service: MongoDB read models, the HTTP service directory, fakes."""
