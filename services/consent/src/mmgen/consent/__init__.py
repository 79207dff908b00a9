"""mmgen.consent: consents, policy versions, the tracking gate, erasure and the audit log."""

__version__ = "0.1.0"
