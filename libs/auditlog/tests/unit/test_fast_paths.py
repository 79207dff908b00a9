"""The verifier's fast paths accept nothing the exact path refuses, with the same bytes.

`fast_entry_bytes` (parsed entries) and `canonical_line_bytes` (export lines, not parsed) are
what make offline verification fast; these tests hold them to `_validate(json.loads(...))`:
on valid entries, on every single-character change of a canonical line, on field mutations,
and through whole verifications, whose verdicts must be the same on either path.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmgen.auditlog import entry as E
from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, open_checkpoint, sign_checkpoint
from mmgen.auditlog.errors import EntryMalformedError
from mmgen.auditlog.merkle import Frontier, TreeAppender
from mmgen.auditlog.parallel import verify_export_file
from mmgen.auditlog.verify import LogVerifier, verify_export, verify_log

SIGNER = NoteSigner.generate("fast.test/audit")
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


def _exact(obj: Any) -> bytes | None:
    try:
        return E._validate(obj, with_hash=True)
    except EntryMalformedError:
        return None


def _line(obj: dict[str, Any]) -> str:
    """An export line as the server writes it (canonical text, `hash` in its place)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _chain(n: int, **over: Any) -> list[dict[str, Any]]:
    builder = E.ChainBuilder()
    out = []
    for i in range(n):
        fields: dict[str, Any] = {
            "event_id": f"0195f3a0-0000-7000-8000-{i:012d}",
            "producer": ("identity", "consent")[i % 2],
            "producer_seq": i,
            "event_type": "consent.ConsentRecordsRead",
            "action": ("read", "deny", "share", "consent")[i % 4],
            "subject_id": None if i % 3 == 0 else f"subject-{i % 5}",
            "actor_id": f"actor-{i % 7}",
            "actor_role": "staff",
            "purpose": None if i % 4 == 1 else "support",
            "resource": None if i % 6 == 0 else {"type": "account", "id": f"r{i}"},
            "categories": ["contact", "usage"][: i % 3],
            "occurred_at": T0 + timedelta(milliseconds=7 * i),
            "recorded_at": T0 + timedelta(seconds=1, milliseconds=7 * i),
        }
        fields.update(over)
        out.append(builder.append(**fields).to_json())
    return out


@given(
    strings=st.lists(_text, min_size=9, max_size=9),
    optional=st.lists(st.booleans(), min_size=5, max_size=5),
    categories=st.lists(_text, max_size=5, unique=True),
    seq=st.integers(0, 2**54),
    producer_seq=st.integers(0, 2**54),
    micros=st.integers(0, 10**16),
)
@settings(max_examples=300)
def test_both_fast_paths_agree_with_the_exact_path_on_random_entries(
    strings: list[str],
    optional: list[bool],
    categories: list[str],
    seq: int,
    producer_seq: int,
    micros: int,
) -> None:
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    prev = hashlib.sha256(strings[0].encode()).digest()
    entry = E.make_entry(
        seq=seq,
        prev_hash=prev,
        event_id=strings[0],
        producer=strings[1],
        producer_seq=producer_seq,
        event_type=strings[2],
        action="erase",
        subject_id=strings[3] if optional[0] else None,
        actor_id=strings[4] if optional[1] else None,
        actor_role=strings[5] if optional[2] else None,
        purpose=strings[6] if optional[3] else None,
        resource={"type": strings[7], "id": strings[8]} if optional[4] else None,
        categories=categories,
        occurred_at=when,
        recorded_at=when,
    )
    obj = entry.to_json()
    exact = E._validate(obj, with_hash=True)
    fast = E.fast_entry_bytes(obj, seq, prev.hex())
    assert fast is None or fast == exact
    line = _line(obj)
    found = E.canonical_line_bytes(line, seq, prev.hex())
    assert found is None or found == (exact, obj["hash"])
    # Plain ASCII entries below 2**53 are what the fast paths exist for: they must take them.
    plain = all(s.isascii() and s.isprintable() and '"' not in s and "\\" not in s for s in strings)
    if plain and max(seq, producer_seq) < 2**53 and all(c.isascii() for c in categories):
        assert fast == exact


@given(position=st.integers(0, 10_000), char=st.characters(max_codepoint=0x2FF))
@settings(max_examples=1500)
def test_no_single_character_change_is_accepted_unless_it_is_a_valid_entry(
    position: int, char: str
) -> None:
    """Change one character of a canonical line: the fast path may take the result only if
    it still parses to a valid entry whose exact bytes are what the fast path computed."""
    obj = _chain(3)[2]
    line = _line(obj)
    at = position % len(line)
    changed = line[:at] + char + line[at + 1 :]
    found = E.canonical_line_bytes(changed, 2, obj["prev_hash"])
    if found is None:
        return
    parsed = json.loads(changed)
    assert found == (E._validate(parsed, with_hash=True), parsed["hash"])


_FIELD_MUTATIONS: list[tuple[str, Any]] = [
    ("seq as string", lambda o: o.update(seq=str(o["seq"]))),
    ("seq as float", lambda o: o.update(seq=float(o["seq"]))),
    ("bool producer_seq", lambda o: o.update(producer_seq=True)),
    ("producer_seq above 2**53", lambda o: o.update(producer_seq=2**53)),
    ("empty event_id", lambda o: o.update(event_id="")),
    ("long event_type", lambda o: o.update(event_type="x" * 257)),
    ("unknown action", lambda o: o.update(action="peek")),
    ("empty purpose", lambda o: o.update(purpose="")),
    ("tuple categories", lambda o: o.update(categories=tuple(o["categories"]))),
    ("unsorted categories", lambda o: o.update(categories=["usage", "contact"])),
    ("repeated category", lambda o: o.update(categories=["usage", "usage"])),
    ("33 categories", lambda o: o.update(categories=[f"c{i:02d}" for i in range(33)])),
    ("resource extra key", lambda o: o.update(resource={"type": "a", "id": "b", "x": "c"})),
    ("resource empty id", lambda o: o.update(resource={"type": "a", "id": ""})),
    ("second 60", lambda o: o.update(occurred_at="2026-11-25T08:00:60.000Z")),
    ("hour 24", lambda o: o.update(recorded_at="2026-11-25T24:00:00.000Z")),
    ("30 February", lambda o: o.update(recorded_at="2026-02-30T08:00:00.000Z")),
    ("year 0", lambda o: o.update(occurred_at="0000-01-01T00:00:00.000Z")),
    ("arabic digits", lambda o: o.update(occurred_at="٢٠٢٦-11-25T08:00:00.000Z")),
    ("uppercase prev_hash", lambda o: o.update(prev_hash=o["prev_hash"].upper())),
    ("lone surrogate", lambda o: o.update(actor_role="\ud800")),
    ("extra member", lambda o: o.update(note="x")),
    ("str subclass", lambda o: o.update(producer=type("S", (str,), {})("consent"))),
]


@pytest.mark.parametrize(("name", "mutate"), _FIELD_MUTATIONS, ids=[m[0] for m in _FIELD_MUTATIONS])
def test_field_mutations_never_pass_the_fast_paths_with_other_bytes(name: str, mutate: Any) -> None:
    obj = copy.deepcopy(_chain(4)[3])
    mutate(obj)
    exact = _exact(obj)
    fast = E.fast_entry_bytes(obj, 3, _chain(4)[2]["hash"])
    assert fast is None or fast == exact
    try:
        line = _line(obj)
    except (TypeError, ValueError):
        return
    found = E.canonical_line_bytes(line, 3, _chain(4)[2]["hash"])
    assert found is None or found[0] == _exact(json.loads(line))


def _export(entries: list[dict[str, Any]]) -> str:
    return "".join(_line(e) + "\n" for e in entries)


def _note(entries: list[dict[str, Any]]) -> str:
    appender = TreeAppender()
    for e in entries:
        appender.append(E.leaf_hash(E.entry_bytes(e)))
    return sign_checkpoint(Checkpoint(SIGNER.name, len(entries), appender.root()), SIGNER)


def _tampered() -> list[tuple[str, list[dict[str, Any]] | str]]:
    good = _chain(40)
    cases: list[tuple[str, list[dict[str, Any]] | str]] = [("valid", good)]
    for name, mutate in (
        ("purpose changed", lambda o: o.update(purpose="marketing")),
        ("hash of another", lambda o: o.update(hash="00" * 32)),
        ("prev_hash wrong", lambda o: o.update(prev_hash="11" * 32)),
        ("seq as string", lambda o: o.update(seq=str(o["seq"]))),
        ("extra member", lambda o: o.update(extra=1)),
        ("uppercase hash", lambda o: o.update(hash=o["hash"].upper())),
        ("non-ascii actor", lambda o: o.update(actor_role="Stäff")),
    ):
        entries = copy.deepcopy(good)
        mutate(entries[17])
        cases.append((name, entries))
    cases.append(("missing entry", good[:9] + good[10:]))
    cases.append(("swapped entries", [*good[:5], good[6], good[5], *good[7:]]))
    cases.append(("truncated", good[:30]))
    text = _export(good)
    lines = text.splitlines(keepends=True)
    cases.append(("broken json line", "".join(lines[:11]) + "{not json\n" + "".join(lines[12:])))
    cases.append(("escaped unicode line", text.replace('"staff"', '"st\\u0061ff"', 1)))
    cases.append(("crlf and blank lines", text.replace("\n", "\r\n\n")))
    bad_utf8 = text.encode()
    cut = bad_utf8.index(b"\n", len(bad_utf8) // 2) + 1
    cases.append(
        ("bad utf-8 line", (bad_utf8[:cut] + b"\xff\xfe\n" + bad_utf8[cut:]).decode("latin-1"))
    )
    return cases


@pytest.mark.parametrize(("name", "case"), _tampered(), ids=[c[0] for c in _tampered()])
def test_export_lines_and_parsed_entries_get_the_same_verdict(name: str, case: Any) -> None:
    good = _chain(40)
    note = _note(good)
    key = SIGNER.verifier()
    if isinstance(case, str):
        raw = case.encode("latin-1") if name == "bad utf-8 line" else case.encode()
        parsed: list[Any] = []
        for line in raw.split(b"\n"):
            if line.strip():
                try:
                    parsed.append(json.loads(line))
                except ValueError:
                    break
        expected = verify_log(iter(parsed), checkpoint_note=note, verifier_key=key)
        if len(parsed) < sum(1 for line in raw.split(b"\n") if line.strip()):
            verifier = LogVerifier(frontier=Frontier(0), checkpoint=expected.checkpoint)
            for item in parsed:
                verifier.feed(item)
            verifier.fail_unreadable("unreadable entry")
            expected = verifier.result()
    else:
        raw = _export(case).encode()
        expected = verify_log(iter(case), checkpoint_note=note, verifier_key=key)
    got = verify_export(io.BytesIO(raw), checkpoint_note=note, verifier_key=key)
    assert (got.valid, got.checked, got.first_bad_seq, got.code) == (
        expected.valid,
        expected.checked,
        expected.first_bad_seq,
        expected.code,
    )
    if name in ("valid", "escaped unicode line", "crlf and blank lines"):
        assert got.valid and got.checked == 40


def test_progress_is_reported_in_steps_and_in_full() -> None:
    entries = _chain(100)
    told: list[int] = []
    result = verify_export(
        io.BytesIO(_export(entries).encode()),
        checkpoint_note=_note(entries),
        verifier_key=SIGNER.verifier(),
        progress=told.append,
        progress_every=32,
    )
    assert result.valid and told == [32, 32, 32, 4]


def test_roots_at_given_sizes_are_kept() -> None:
    entries = _chain(20)
    verifier = LogVerifier(frontier=Frontier(0), roots_at=(0, 7, 20, 25))
    for line in _export(entries).splitlines():
        assert verifier.feed_line(line)
    appender = TreeAppender()
    for i, e in enumerate(entries):
        appender.append(E.leaf_hash(E.entry_bytes(e)))
        if i + 1 == 7:
            assert verifier.root_at(7) == appender.root()
    assert verifier.root_at(20) == appender.root() and verifier.root_at(25) is None
    assert verifier.root_at(0) == TreeAppender().root()


def test_a_bom_at_the_start_of_an_export_is_skipped() -> None:
    entries = _chain(5)
    raw = b"\xef\xbb\xbf" + _export(entries).encode()
    result = verify_export(
        io.BytesIO(raw), checkpoint_note=_note(entries), verifier_key=SIGNER.verifier()
    )
    assert result.valid and result.checked == 5
    text = io.StringIO("\ufeff" + _export(entries))
    result = verify_export(text, checkpoint_note=_note(entries), verifier_key=SIGNER.verifier())
    assert result.valid and result.checked == 5


@pytest.mark.parametrize(("name", "case"), _tampered(), ids=[c[0] for c in _tampered()])
def test_verification_on_worker_processes_gives_the_sequential_verdict(
    name: str, case: Any, tmp_path: Path
) -> None:
    """Spans of ~3 lines on 2 workers: every span joins or falls back, and the verdict —
    valid, checked, first bad seq, code — is the one read line by line."""
    good = _chain(40)
    checkpoint = open_checkpoint(_note(good), SIGNER.verifier())
    if isinstance(case, str):
        raw = case.encode("latin-1") if name == "bad utf-8 line" else case.encode()
    else:
        raw = _export(case).encode()
    path = tmp_path / "export.jsonl"
    path.write_bytes(raw)
    sequential = verify_export(
        io.BytesIO(raw), checkpoint_note=_note(good), verifier_key=SIGNER.verifier()
    )
    told: list[int] = []
    parallel = verify_export_file(
        path,
        checkpoint=checkpoint,
        roots_at=(17,),
        workers=2,
        progress=told.append,
        span_bytes=2000,
        min_parallel_bytes=0,
    )
    got = parallel.result()
    assert (got.valid, got.checked, got.first_bad_seq, got.code, got.root_hash) == (
        sequential.valid,
        sequential.checked,
        sequential.first_bad_seq,
        sequential.code,
        sequential.root_hash,
    )
    assert sum(told) == got.checked or not got.valid
    if name == "valid":  # the workers did it, a span at a time (one report per span)
        assert len(told) > 5 and got.checked == 40
    if got.checked >= 17:
        appender = TreeAppender()
        for e in good[:17]:
            appender.append(E.leaf_hash(E.entry_bytes(e)))
        assert parallel.root_at(17) == appender.root() or name != "valid"
