"""The consent domain: purposes, policies, consent decisions, events and errors (no I/O)."""
