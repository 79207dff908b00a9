"""Entrypoints: the HTTP API, the retention-commands consumer, the app factory."""
