"""mmgen.verifier: the audit log's verification, for people who do not trust its server.

`mmgen-verify` (the `mmgen-verify` distribution) depends only on the audit-log formats
(`mmgen-auditlog`), an HTTP client and a CLI library: compliance staff and outside auditors
install it alone. The developers' `mmgen audit …` commands are these same commands.
"""
