"""mmgen.retention: privacy requests with legal deadlines, erasure orchestration, policies."""

__version__ = "0.1.0"
