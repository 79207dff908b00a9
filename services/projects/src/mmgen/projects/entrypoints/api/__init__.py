"""The HTTP edge of the projects service: request and response schemas, problem mapping."""
