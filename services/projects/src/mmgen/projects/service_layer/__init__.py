"""Use cases of the projects service and its erasure participant."""
