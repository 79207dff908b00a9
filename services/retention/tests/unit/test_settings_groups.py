"""Retention's audit feed reads `audit.log` in a group named under the topic prefix."""

from __future__ import annotations

from mmgen.retention.settings import RetentionSettings
from mmgen.runtime.testing import random_secrets


def test_the_audit_group_is_named_under_the_topic_prefix() -> None:
    """Stacks sharing a cluster under different prefixes never share the feed's group."""
    secrets = random_secrets(RetentionSettings)
    named = RetentionSettings(environment="test", topic_prefix="b.", **secrets)
    assert named.audit_consumer_group == "b.retention-audit"
    chosen = RetentionSettings(environment="test", audit_consumer_group="mine", **secrets)
    assert chosen.audit_consumer_group == "mine"
