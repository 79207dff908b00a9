"""The projects domain: the project aggregate, access policy, events, file rules; no I/O."""
