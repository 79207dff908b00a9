"""Read models, file storage, projections and the access-log port of the projects service."""
