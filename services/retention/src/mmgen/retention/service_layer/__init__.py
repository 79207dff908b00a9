"""Use cases of the retention service over ports (explicit dependencies, fakes in unit tests)."""
