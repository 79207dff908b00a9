"""Consumer groups live under the topic prefix, like the topics they read.

Installations (or test stacks) sharing one cluster under different prefixes must never share
a group: a member of one — a replica killed without leaving, say — would hold up every
rebalance of the other, and its services would never become ready.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from mmgen.runtime.settings import EventServiceSettings


class _Settings(EventServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SVC_", extra="ignore", frozen=True)
    service_name: str = "svc"


def test_the_inbox_group_is_named_under_the_topic_prefix() -> None:
    assert _Settings(environment="test").inbox_group == "svc-inbox"
    assert _Settings(environment="test", topic_prefix="a.").inbox_group == "a.svc-inbox"
    assert (
        _Settings(environment="test", topic_prefix="a.", consumer_group="chosen").inbox_group
        == "chosen"
    )
