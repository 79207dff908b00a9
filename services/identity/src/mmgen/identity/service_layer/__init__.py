"""Use cases of identity: accounts, tokens, erasure. HTTP routes and consumers end here."""
