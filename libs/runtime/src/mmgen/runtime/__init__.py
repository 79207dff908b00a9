"""mmgen.runtime: what every Multimedia Gen service runs on.

A service writes its domain, service layer, adapters, routers and an `ErasureParticipant`;
`ServiceRuntime` gives it, in one ordered lifespan, the event kernel, its topics, the outbox
relay under its lease, the republish listener, one inbox consumer, checkpointed projectors,
readiness and metrics; `build_service_app` gives it the HTTP edges (problem+json, tokens,
audited refusals, `/internal/subjects/{id}/export|footprint`, `/asyncapi.json`).
Import from the modules (`mmgen.runtime.service`, `mmgen.runtime.erasure`, ...).
"""
