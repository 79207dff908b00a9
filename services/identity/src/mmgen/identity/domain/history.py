"""identity's standard events in the shapes it stored before the erasure contract.

Until the runtime's standard events, identity recorded `identity.AccessDenied` and
`identity.SubjectErased` with models of its own (schema version 1). Those events stay in the
store, in Kafka and in the audit log, so the standard events are registered for identity at
version 2 and the upcasters below bring a version-1 event to the standard fields on read.

- AccessDenied `path` → `route` (it was already the route template);
- AccessDenied `target_user_id` → dropped: it was always the envelope's `subject_id` too, which
  is where the standard recorder names the user a refused request was about;
- SubjectErased `key_shredded` (bool) → `keys_shredded` (1 or 0: one key per subject);
- SubjectErased `read_models_deleted` (int) → `records_deleted` `{"account": n}`;
- SubjectErased `events_made_unreadable` (int) → `records_anonymized` `{"account": n}`;
- SubjectErased `held_categories` → `categories_held`.

Version 1 counted without categories; its counts are attributed to `account`, the category of
the account record they all belong to.
"""

from __future__ import annotations

from mmgen.events.registry import EventRegistry, JsonDict

#: Schema versions of identity's standard events (the others start at version 1).
STANDARD_EVENT_VERSIONS = {"AccessDenied": 2, "SubjectErased": 2}
ACCOUNT = "account"


Step = tuple[JsonDict, JsonDict | None]


def access_denied_v1(data: JsonDict, personal: JsonDict | None) -> Step:
    """`{code, status, method, path, target_user_id}` → the standard `AccessDenied` fields."""
    return {
        "code": data["code"],
        "status": data["status"],
        "method": data["method"],
        "route": data["path"],
        "target_type": None,
        "target_id": None,
    }, personal


def subject_erased_v1(data: JsonDict, personal: JsonDict | None) -> Step:
    """`{request_id, subject_id, key_shredded, events_made_unreadable, read_models_deleted,
    held_categories}` → the standard `SubjectErased` fields."""
    deleted = int(data.get("read_models_deleted") or 0)
    unreadable = int(data.get("events_made_unreadable") or 0)
    return {
        "request_id": data.get("request_id"),
        "subject_id": data["subject_id"],
        "keys_shredded": 1 if data.get("key_shredded") else 0,
        "records_deleted": {ACCOUNT: deleted} if deleted else {},
        "records_anonymized": {ACCOUNT: unreadable} if unreadable else {},
        "categories_held": list(data.get("held_categories") or []),
    }, personal


def register_upcasters(registry: EventRegistry) -> None:
    """Register the version 1 → 2 steps (before the kernel checks the registry)."""
    registry.upcaster("identity.AccessDenied", from_version=1)(access_denied_v1)
    registry.upcaster("identity.SubjectErased", from_version=1)(subject_erased_v1)
