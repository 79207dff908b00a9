"""The profiles HTTP API (request and response models)."""
