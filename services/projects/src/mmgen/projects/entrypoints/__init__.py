"""Entry points of the projects service (HTTP schemas; routes are wired on the runtime)."""
