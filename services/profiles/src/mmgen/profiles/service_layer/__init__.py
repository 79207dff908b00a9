"""Use cases of the profiles service and its part of the erasure contract."""
