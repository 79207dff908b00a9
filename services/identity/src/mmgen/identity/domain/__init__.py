"""The identity domain: accounts, credentials rules and events; no I/O, no web code."""
