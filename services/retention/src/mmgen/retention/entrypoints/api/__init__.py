"""The retention HTTP API: request and response bodies."""
