"""HTTP edge of the consent service: routes, schemas, dependencies, the problem map."""
