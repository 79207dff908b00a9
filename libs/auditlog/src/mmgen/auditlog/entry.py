"""Audit entries: the exact field set, their canonical JSON forms, entry bytes and the hash chain.

One entry is one JSON object with exactly these members (DESIGN.md, consent section)::

    seq, event_id, producer, producer_seq, event_type, action, subject_id, actor_id,
    actor_role, purpose, resource: {type, id}, categories, occurred_at, recorded_at,
    prev_hash, hash

Canonical member forms (anything else is refused as malformed, so one entry has exactly
one byte form):

* ``seq``, ``producer_seq``: unsigned integers up to 2**64-1; a JSON integer while
  <= 2**53-1 (``MAX_SAFE_INTEGER``), otherwise a JSON string of decimal digits without
  leading zeros. ``seq`` is the 0-based leaf index.
* ``occurred_at``, ``recorded_at``: RFC 3339 UTC strings ``YYYY-MM-DDTHH:MM:SS.mmmZ``,
  always exactly three fractional digits (millisecond precision, the precision of BSON
  dates and JavaScript); finer input is truncated, not rounded, before hashing.
* ``event_id``, ``producer``, ``event_type``: non-empty strings. ``subject_id``,
  ``actor_id``, ``actor_role``, ``purpose``: a non-empty string or ``null`` (never absent,
  never ""). ``action``: one of ``ACTIONS``.
* ``resource``: ``{"type": str, "id": str}`` (both non-empty) or ``null``.
* ``categories``: array of distinct non-empty strings in ascending code-point order.
* ``prev_hash``, ``hash``: 64 lowercase hex digits. ``prev_hash`` of seq 0 is 32 zero bytes.

``entry_bytes = JCS(entry without "hash")`` (RFC 8785), ``hash = SHA-256(prev_hash ||
entry_bytes)`` over the raw 32 bytes of ``prev_hash``, and the Merkle leaf hash is
``SHA-256(0x00 || entry_bytes)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import EntryMalformedError
from .jcs import MAX_SAFE_INTEGER
from .merkle import hash_leaf

__all__ = [
    "ACTIONS",
    "ENTRY_FIELDS",
    "MAX_CATEGORIES",
    "MAX_STRING_LENGTH",
    "MAX_UINT64",
    "ZERO_HASH",
    "AuditEntry",
    "ChainBuilder",
    "Resource",
    "canonical_line_bytes",
    "canonical_line_parts",
    "chain_hash",
    "decode_uint",
    "encode_uint",
    "entry_bytes",
    "fast_entry_bytes",
    "format_timestamp",
    "leaf_hash",
    "make_entry",
    "parse_timestamp",
]

ZERO_HASH = bytes(32)
MAX_UINT64 = 2**64 - 1
MAX_STRING_LENGTH = 256
MAX_CATEGORIES = 32
ACTIONS = frozenset({"create", "read", "update", "delete", "share", "consent", "deny", "erase"})
#: Members of an entry, in canonical (sorted) order; "hash" is not part of entry bytes.
ENTRY_FIELDS = (
    "action",
    "actor_id",
    "actor_role",
    "categories",
    "event_id",
    "event_type",
    "hash",
    "occurred_at",
    "prev_hash",
    "producer",
    "producer_seq",
    "purpose",
    "recorded_at",
    "resource",
    "seq",
    "subject_id",
)
_FIELD_SET = frozenset(ENTRY_FIELDS)
_UNHASHED_SET = _FIELD_SET - {"hash"}
_RESOURCE_KEYS = frozenset({"type", "id"})
_OPTIONAL_STRINGS = ("subject_id", "actor_id", "actor_role", "purpose")

_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
_DECIMAL_RE = re.compile(r"[1-9][0-9]*")

_sha256 = hashlib.sha256
_enc = json.encoder.encode_basestring


def _opt(value: str | None) -> str:
    return "null" if value is None else _enc(value)


def _uint(value: int | str) -> str:
    return str(value) if type(value) is int else f'"{value}"'


def _serialize(o: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of a *validated* entry mapping, without its "hash" member.

    Members are written in their fixed JCS order (all names are ASCII, so UTF-16 order is
    byte order); strings go through the C JSON string encoder, whose escaping is exactly
    RFC 8785's; timestamps and hashes are validated ASCII and need no escaping. Tests check
    byte equality with the general ``mmgen.auditlog.jcs.canonicalize`` on random entries.
    This is the verifier's hot path: about twice as fast as ``json.dumps(sort_keys=True)``.
    """
    r = o["resource"]
    return "".join(
        (
            '{"action":', _enc(o["action"]),
            ',"actor_id":', _opt(o["actor_id"]),
            ',"actor_role":', _opt(o["actor_role"]),
            ',"categories":[', ",".join(map(_enc, o["categories"])),
            '],"event_id":', _enc(o["event_id"]),
            ',"event_type":', _enc(o["event_type"]),
            ',"occurred_at":"', o["occurred_at"],
            '","prev_hash":"', o["prev_hash"],
            '","producer":', _enc(o["producer"]),
            ',"producer_seq":', _uint(o["producer_seq"]),
            ',"purpose":', _opt(o["purpose"]),
            ',"recorded_at":"', o["recorded_at"],
            '","resource":',
            "null" if r is None else '{"id":' + _enc(r["id"]) + ',"type":' + _enc(r["type"]) + "}",
            ',"seq":', _uint(o["seq"]),
            ',"subject_id":', _opt(o["subject_id"]),
            "}",
        )
    ).encode("utf-8")  # fmt: skip


# --------------------------------------------------------------------------- field forms


def encode_uint(value: int) -> int | str:
    """Canonical JSON form of seq/producer_seq: int up to 2**53-1, decimal string above."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UINT64:
        raise EntryMalformedError(f"not a uint64: {value!r}")
    return value if value <= MAX_SAFE_INTEGER else str(value)


def decode_uint(value: object, name: str = "value") -> int:
    """Inverse of ``encode_uint``; refuses every non-canonical form (e.g. "5" or 2**53)."""
    if type(value) is int:
        if 0 <= value <= MAX_SAFE_INTEGER:
            return value
        raise EntryMalformedError(f"{name}: integers above 2**53-1 must be decimal strings")
    if isinstance(value, str) and _DECIMAL_RE.fullmatch(value):
        n = int(value)
        if MAX_SAFE_INTEGER < n <= MAX_UINT64:
            return n
    raise EntryMalformedError(f"{name}: not a canonical uint64 ({value!r})")


def format_timestamp(value: datetime | str) -> str:
    """Canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ`` form of an aware datetime or RFC 3339 string.

    Naive datetimes are refused: guessing a zone would silently change what is hashed.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise EntryMalformedError(f"not an RFC 3339 timestamp: {value!r}") from exc
    if not isinstance(value, datetime):
        raise EntryMalformedError(f"not a timestamp: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise EntryMalformedError("timestamp has no UTC offset")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> datetime:
    """Aware UTC datetime of a canonical timestamp string (refuses any other form)."""
    _check_timestamp(value, "timestamp")
    return datetime.fromisoformat(value)


def _check_timestamp(value: object, name: str) -> str:
    if not isinstance(value, str) or not _TIMESTAMP_RE.fullmatch(value):
        raise EntryMalformedError(f"{name}: not a canonical UTC timestamp YYYY-MM-DDTHH:MM:SS.mmmZ")
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise EntryMalformedError(f"{name}: not a valid date/time") from exc
    return value


def _check_str(value: object, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_STRING_LENGTH:
        raise EntryMalformedError(
            f"{name}: must be a non-empty string of at most {MAX_STRING_LENGTH} characters"
        )
    return value


def _check_opt_str(value: object, name: str) -> str | None:
    return None if value is None else _check_str(value, name)


def _check_hash_hex(value: object, name: str) -> bytes:
    if not isinstance(value, str) or not _HEX64_RE.fullmatch(value):
        raise EntryMalformedError(f"{name}: must be 64 lowercase hex digits")
    return bytes.fromhex(value)


def _check_categories(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or len(value) > MAX_CATEGORIES:
        raise EntryMalformedError(f"categories: must be an array of at most {MAX_CATEGORIES}")
    prev: str | None = None
    for item in value:
        _check_str(item, "categories[]")
        if prev is not None and not prev < item:
            raise EntryMalformedError("categories: must be distinct and in ascending order")
        prev = item
    return tuple(value)


def _check_action(value: object) -> str:
    if not isinstance(value, str) or value not in ACTIONS:
        raise EntryMalformedError(f"action: must be one of {sorted(ACTIONS)}")
    return value


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class Resource:
    """What an audited event touched."""

    type: str
    id: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "type": self.type}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One hashed audit entry; timestamps are kept in their canonical string form."""

    seq: int
    event_id: str
    producer: str
    producer_seq: int
    event_type: str
    action: str
    subject_id: str | None
    actor_id: str | None
    actor_role: str | None
    purpose: str | None
    resource: Resource | None
    categories: tuple[str, ...]
    occurred_at: str
    recorded_at: str
    prev_hash: bytes
    hash: bytes

    def unhashed_json(self) -> dict[str, Any]:
        """The JSON object that entry bytes canonicalise: every member but "hash"."""
        return {
            "action": self.action,
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "categories": list(self.categories),
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "prev_hash": self.prev_hash.hex(),
            "producer": self.producer,
            "producer_seq": encode_uint(self.producer_seq),
            "purpose": self.purpose,
            "recorded_at": self.recorded_at,
            "resource": None if self.resource is None else self.resource.to_json(),
            "seq": encode_uint(self.seq),
            "subject_id": self.subject_id,
        }

    def to_json(self) -> dict[str, Any]:
        """The entry as served by the API and written to exports (all members, hex hashes)."""
        obj = self.unhashed_json()
        obj["hash"] = self.hash.hex()
        return obj

    @property
    def entry_bytes(self) -> bytes:
        return _serialize(self.unhashed_json())

    @property
    def leaf_hash(self) -> bytes:
        """Merkle leaf hash SHA-256(0x00 || entry_bytes): what the tree stores at ``seq``."""
        return hash_leaf(self.entry_bytes)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AuditEntry:
        """Parse a served/exported entry, refusing any non-canonical or unknown member.

        The stored ``hash`` is taken as given; ``verify`` recomputes and compares it.
        """
        _validate(obj, with_hash=True)
        return _from_valid_json(obj)

    def recompute_hash(self) -> bytes:
        return chain_hash(self.prev_hash, self.entry_bytes)


def _validate(obj: Mapping[str, Any], *, with_hash: bool) -> bytes:
    """Check every member of a JSON entry is in canonical form; return its entry bytes.

    This is the verifier's hot path, so it checks the mapping in place and canonicalises
    it directly instead of building an ``AuditEntry`` first.
    """
    if not isinstance(obj, dict):
        if not isinstance(obj, Mapping):
            raise EntryMalformedError("entry must be a JSON object")
        obj = dict(obj)
    keys = obj.keys()
    if keys != _FIELD_SET and (with_hash or keys != _UNHASHED_SET):
        missing = sorted(_FIELD_SET - set(keys) - (set() if with_hash else {"hash"}))
        extra = sorted(set(keys) - _FIELD_SET)
        raise EntryMalformedError(f"entry members: missing {missing}, unexpected {extra}")
    resource = obj["resource"]
    if resource is not None:
        if not isinstance(resource, dict) or resource.keys() != _RESOURCE_KEYS:
            raise EntryMalformedError('resource: must be {"type", "id"} or null')
        _check_str(resource["type"], "resource.type")
        _check_str(resource["id"], "resource.id")
    decode_uint(obj["seq"], "seq")
    decode_uint(obj["producer_seq"], "producer_seq")
    _check_str(obj["event_id"], "event_id")
    _check_str(obj["producer"], "producer")
    _check_str(obj["event_type"], "event_type")
    _check_action(obj["action"])
    for name in _OPTIONAL_STRINGS:
        value = obj[name]
        if value is not None:
            _check_str(value, name)
    categories = obj["categories"]
    if not isinstance(categories, list):
        raise EntryMalformedError("categories: must be an array")
    _check_categories(categories)
    _check_timestamp(obj["occurred_at"], "occurred_at")
    _check_timestamp(obj["recorded_at"], "recorded_at")
    _check_hash_hex(obj["prev_hash"], "prev_hash")
    if with_hash:
        _check_hash_hex(obj["hash"], "hash")
    try:
        return _serialize(obj)
    except UnicodeEncodeError as exc:
        raise EntryMalformedError("entry contains a lone surrogate") from exc


_FAST_TIMESTAMP_RE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z"
)
_VALID_DATES: set[str] = set()
_MAX_CACHED_DATES = 4096


def _valid_date(text: str) -> bool:
    """`YYYY-MM-DD` is a real date (cached: an export holds few distinct days)."""
    if text in _VALID_DATES:
        return True
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    if len(_VALID_DATES) >= _MAX_CACHED_DATES:
        _VALID_DATES.clear()
    _VALID_DATES.add(text)
    return True


def _fast_timestamp(value: object) -> bool:
    if type(value) is not str:
        return False
    match = _FAST_TIMESTAMP_RE.fullmatch(value)
    return match is not None and _valid_date(match.group(1))


def fast_entry_bytes(obj: object, seq: int, prev_hash_hex: str) -> bytes | None:
    """The entry bytes of ``obj`` when it is, by the cheapest checks, the canonical entry at
    ``seq`` linked to ``prev_hash_hex``; None when anything is off or unusual.

    The streaming verifier's fast path: every check of ``_validate`` is made here, exactly or
    more strictly (exact ``str``/``int``/``list``/``dict`` types, ASCII digits, time-of-day
    ranges), except two that the caller completes: ``prev_hash`` is compared with the known
    previous hash (so it is canonical when equal), and ``hash`` is left to be compared with
    the recomputed one (equal means canonical). On None the caller takes the exact path,
    which names the failure; an entry accepted here is accepted there, with the same bytes.
    """
    if type(obj) is not dict or obj.keys() != _FIELD_SET:
        return None
    o: dict[str, Any] = obj
    if o["seq"] != seq or type(o["seq"]) is not int or seq > MAX_SAFE_INTEGER:
        return None
    if o["prev_hash"] != prev_hash_hex:
        return None
    producer_seq = o["producer_seq"]
    if type(producer_seq) is not int or not 0 <= producer_seq <= MAX_SAFE_INTEGER:
        return None
    for name in ("event_id", "producer", "event_type"):
        value = o[name]
        if type(value) is not str or not 0 < len(value) <= MAX_STRING_LENGTH:
            return None
    for name in _OPTIONAL_STRINGS:
        value = o[name]
        if value is not None and (
            type(value) is not str or not 0 < len(value) <= MAX_STRING_LENGTH
        ):
            return None
    action = o["action"]
    if type(action) is not str or action not in ACTIONS:
        return None
    resource = o["resource"]
    if resource is not None:
        if type(resource) is not dict or resource.keys() != _RESOURCE_KEYS:
            return None
        for value in resource.values():
            if type(value) is not str or not 0 < len(value) <= MAX_STRING_LENGTH:
                return None
    categories = o["categories"]
    if type(categories) is not list or len(categories) > MAX_CATEGORIES:
        return None
    previous = ""
    for item in categories:
        if type(item) is not str or not 0 < len(item) <= MAX_STRING_LENGTH or item <= previous:
            return None
        previous = item
    if not (_fast_timestamp(o["occurred_at"]) and _fast_timestamp(o["recorded_at"])):
        return None
    try:
        return _serialize(o)
    except UnicodeEncodeError:  # a lone surrogate: the exact path refuses it
        return None


_S = r'[^"\\\x00-\x1f]{1,256}'
"""A string member without escapes: 1..256 characters, none of `"`, `\\` or a control."""
_OPT = rf'(?:null|"{_S}")'
_TS = (
    r'"([0-9]{4}-[0-9]{2}-[0-9]{2})'
    r'T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z"'
)
_UINT = r"(0|[1-9][0-9]{0,15})"
_CANONICAL_LINE = re.compile(
    r'\{"action":"(?:' + "|".join(sorted(ACTIONS)) + r')"'
    rf',"actor_id":{_OPT},"actor_role":{_OPT}'
    rf',"categories":\[((?:"{_S}"(?:,"{_S}"){{0,{MAX_CATEGORIES - 1}}})?)\]'
    rf',"event_id":"{_S}","event_type":"{_S}"'
    r'(,"hash":"([0-9a-f]{64})")'
    rf',"occurred_at":{_TS},"prev_hash":"([0-9a-f]{{64}})","producer":"{_S}"'
    rf',"producer_seq":{_UINT},"purpose":{_OPT},"recorded_at":{_TS}'
    rf',"resource":(?:null|\{{"id":"{_S}","type":"{_S}"\}})'
    rf',"seq":{_UINT},"subject_id":{_OPT}\}}'
)


def canonical_line_parts(line: str) -> tuple[bytes, str, int, str] | None:
    """``(entry bytes, stated hash, seq, prev_hash)`` of an export line that is, character
    for character, an entry's canonical JSON text; None otherwise.

    The offline verifier's fast path, without parsing JSON: one anchored pattern admits only
    the RFC 8785 text of an entry (members in their order with ``hash`` in its place, strings
    without escapes of 1..256 characters, canonical numbers and timestamps, a known action);
    then the categories' order, the dates and the integers' range are checked, and the entry
    bytes are the line without its ``hash`` member — exactly what ``_validate`` would produce
    from ``json.loads(line)``. Anything else (an escape, a number written as a string, another
    member order, a ``seq`` of 16 digits or more) returns None and takes the exact path. The
    caller checks that ``seq`` and ``prev_hash`` are the ones expected, and the hash.
    """
    match = _CANONICAL_LINE.fullmatch(line)
    if match is None:
        return None
    categories, _, stated, occurred, prev, producer_seq, recorded, seq_text = match.groups()
    # Up to 15 digits is below 2**53 - 1 (16 digits): the integers are converted only then.
    if len(seq_text) > 15 or (len(producer_seq) > 15 and int(producer_seq) > MAX_SAFE_INTEGER):
        return None
    if '","' in categories:
        items = categories[1:-1].split('","')
        if any(a >= b for a, b in itertools.pairwise(items)):
            return None
    dates = _VALID_DATES
    if (occurred not in dates and not _valid_date(occurred)) or (
        recorded not in dates and not _valid_date(recorded)
    ):
        return None
    start, end = match.span(2)
    try:
        data = (line[:start] + line[end:]).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None
    return data, stated, int(seq_text), prev


def canonical_line_bytes(line: str, seq: int, prev_hash_hex: str) -> tuple[bytes, str] | None:
    """``(entry bytes, stated hash)`` of an export line that is the canonical JSON of the entry
    at ``seq`` linked to ``prev_hash_hex`` (`canonical_line_parts`); None otherwise."""
    parts = canonical_line_parts(line)
    if parts is None or parts[2] != seq or parts[3] != prev_hash_hex:
        return None
    return parts[0], parts[1]


def _from_valid_json(obj: Mapping[str, Any]) -> AuditEntry:
    resource = obj["resource"]
    return AuditEntry(
        seq=decode_uint(obj["seq"]),
        event_id=obj["event_id"],
        producer=obj["producer"],
        producer_seq=decode_uint(obj["producer_seq"]),
        event_type=obj["event_type"],
        action=obj["action"],
        subject_id=obj["subject_id"],
        actor_id=obj["actor_id"],
        actor_role=obj["actor_role"],
        purpose=obj["purpose"],
        resource=None if resource is None else Resource(resource["type"], resource["id"]),
        categories=tuple(obj["categories"]),
        occurred_at=obj["occurred_at"],
        recorded_at=obj["recorded_at"],
        prev_hash=bytes.fromhex(obj["prev_hash"]),
        hash=bytes.fromhex(obj["hash"]),
    )


# --------------------------------------------------------------------------- hashing


def entry_bytes(entry: AuditEntry | Mapping[str, Any]) -> bytes:
    """JCS bytes of the entry without its "hash" member (a JSON mapping is validated first)."""
    if isinstance(entry, AuditEntry):
        return entry.entry_bytes
    has_hash = isinstance(entry, Mapping) and "hash" in entry
    return _validate(entry, with_hash=has_hash)


def chain_hash(prev_hash: bytes, entry_bytes: bytes) -> bytes:
    """SHA-256(prev_hash || entry_bytes): links an entry to every entry before it."""
    if len(prev_hash) != 32:
        raise EntryMalformedError("prev_hash must be 32 bytes")
    return _sha256(prev_hash + entry_bytes).digest()


def leaf_hash(entry_bytes: bytes) -> bytes:
    """Merkle leaf hash of an entry: SHA-256(0x00 || entry_bytes)."""
    return hash_leaf(entry_bytes)


def _id_str(value: object, name: str) -> str:
    return str(value) if isinstance(value, uuid.UUID) else _check_str(value, name)


def _opt_id_str(value: object, name: str) -> str | None:
    return None if value is None else _id_str(value, name)


def make_entry(
    *,
    seq: int,
    prev_hash: bytes,
    event_id: str | uuid.UUID,
    producer: str,
    producer_seq: int,
    event_type: str,
    action: str,
    occurred_at: datetime | str,
    recorded_at: datetime | str,
    subject_id: str | uuid.UUID | None = None,
    actor_id: str | uuid.UUID | None = None,
    actor_role: str | None = None,
    purpose: str | None = None,
    resource: Resource | Mapping[str, str] | None = None,
    categories: Iterable[str] = (),
) -> AuditEntry:
    """Build and hash the entry at ``seq`` following ``prev_hash``, normalising inputs.

    UUIDs become their canonical lowercase string, timestamps are truncated to
    milliseconds in UTC, categories are de-duplicated and sorted.
    """
    if not isinstance(prev_hash, bytes) or len(prev_hash) != 32:
        raise EntryMalformedError("prev_hash must be 32 bytes")
    if resource is not None and not isinstance(resource, Resource):
        if not isinstance(resource, Mapping) or set(resource) != {"type", "id"}:
            raise EntryMalformedError('resource: must be {"type", "id"} or null')
        resource = Resource(str(resource["type"]), _id_str(resource["id"], "resource.id"))
    if resource is not None:
        _check_str(resource.type, "resource.type")
        _check_str(resource.id, "resource.id")
    if isinstance(categories, str):
        raise EntryMalformedError("categories: must be an array, not a string")
    cats = tuple(sorted(set(categories)))
    unhashed = AuditEntry(
        seq=decode_uint(encode_uint(seq), "seq"),
        event_id=_id_str(event_id, "event_id"),
        producer=_check_str(producer, "producer"),
        producer_seq=decode_uint(encode_uint(producer_seq), "producer_seq"),
        event_type=_check_str(event_type, "event_type"),
        action=_check_action(action),
        subject_id=_opt_id_str(subject_id, "subject_id"),
        actor_id=_opt_id_str(actor_id, "actor_id"),
        actor_role=_check_opt_str(actor_role, "actor_role"),
        purpose=_check_opt_str(purpose, "purpose"),
        resource=resource,
        categories=_check_categories(cats),
        occurred_at=format_timestamp(occurred_at),
        recorded_at=format_timestamp(recorded_at),
        prev_hash=prev_hash,
        hash=ZERO_HASH,
    )
    try:
        data = unhashed.entry_bytes
    except UnicodeEncodeError as exc:
        raise EntryMalformedError("entry contains a lone surrogate") from exc
    return dataclasses.replace(unhashed, hash=chain_hash(prev_hash, data))


class ChainBuilder:
    """Appends entries to a chain: assigns ``seq`` and ``prev_hash``, computes ``hash``.

    Holds only the head (next seq, last hash). If storing a built entry fails, discard the
    builder and make a new one with ``ChainBuilder.after(last_stored_entry)``.
    """

    __slots__ = ("_next_seq", "_prev_hash")

    def __init__(self, next_seq: int = 0, prev_hash: bytes = ZERO_HASH) -> None:
        if next_seq == 0 and prev_hash != ZERO_HASH:
            raise EntryMalformedError("the first entry's prev_hash is 32 zero bytes")
        encode_uint(next_seq)
        if len(prev_hash) != 32:
            raise EntryMalformedError("prev_hash must be 32 bytes")
        self._next_seq = next_seq
        self._prev_hash = bytes(prev_hash)

    @classmethod
    def after(cls, last: AuditEntry | None) -> ChainBuilder:
        """Builder continuing after ``last`` (or starting a new log when it is None)."""
        return cls() if last is None else cls(last.seq + 1, last.hash)

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def prev_hash(self) -> bytes:
        return self._prev_hash

    def append(self, **fields: Any) -> AuditEntry:
        """Build the next entry from its event fields (see ``make_entry``) and advance."""
        if "seq" in fields or "prev_hash" in fields:
            raise TypeError("seq and prev_hash are assigned by the chain")
        entry = make_entry(seq=self._next_seq, prev_hash=self._prev_hash, **fields)
        self._next_seq += 1
        self._prev_hash = entry.hash
        return entry
