"""Edges of the retention service (HTTP)."""
