"""mmgen.retention: privacy requests with legal deadlines, erasure orchestration, policies."""
