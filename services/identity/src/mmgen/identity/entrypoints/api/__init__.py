"""identity's HTTP API (FastAPI routers on the platform's app factory)."""
