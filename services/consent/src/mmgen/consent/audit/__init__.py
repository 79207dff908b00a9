"""The consent service's audit log: projector, hash chain + Merkle store, signed heads, API.

One composition function for the service's bootstrap: `build_audit(settings, db)` →
`AuditComponent` (`.router`, `.start()`, `.stop()`, `.readiness_checks`, `.denial_recorder`).
"""

from mmgen.consent.audit.component import AuditComponent, AuditConfig, build_audit

__all__ = ["AuditComponent", "AuditConfig", "build_audit"]
