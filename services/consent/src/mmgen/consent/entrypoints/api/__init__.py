"""HTTP edge of the consent service: routers, schemas, dependencies, problem mapping."""
