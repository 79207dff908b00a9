"""The local stack: Kafka-protocol broker and MongoDB-protocol server as child processes.

Used by `mmgen up` and by the test session, so both run the very same launcher.
"""
