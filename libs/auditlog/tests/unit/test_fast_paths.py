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
from mmgen.auditlog.blocks import check_block
from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, open_checkpoint, sign_checkpoint
from mmgen.auditlog.errors import EntryMalformedError
from mmgen.auditlog.merkle import (
    Frontier,
    TreeAppender,
    hash_children,
    hash_leaf,
    root_from_leaf_hashes,
    subtrees_of_range,
)
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
@settings(max_examples=300, deadline=None)
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
@settings(max_examples=1500, deadline=None)
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


# --------------------------------------------------------------------------- blocks


def _reference(raw: bytes, note: str) -> tuple[Any, ...]:
    """The exact verdict: every line parsed and fed through `LogVerifier.feed`'s exact checks;
    a line that does not parse is the entry that could not be read."""
    verifier = LogVerifier(
        frontier=Frontier(0), checkpoint=open_checkpoint(note, SIGNER.verifier())
    )
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            verifier.fail_unreadable("unreadable entry")
            break
        if not verifier._feed_exactly(entry, verifier.next_seq):
            break
    got = verifier.result()
    return got.valid, got.checked, got.first_bad_seq, got.code, got.root_hash


def _every_path(raw: bytes, note: str, tmp_path: Path, *, workers: bool = True) -> list[Any]:
    """The verdict of each way an export is verified: a stream by blocks, a file in this
    process (one span, spans of ~3 lines) and, when `workers`, on 2 worker processes."""
    path = tmp_path / "export.jsonl"
    path.write_bytes(raw)
    checkpoint = open_checkpoint(note, SIGNER.verifier())
    runs = [verify_export(io.BytesIO(raw), checkpoint_note=note, verifier_key=SIGNER.verifier())]
    configs = [(1, 1 << 20), (1, 2000)] + ([(2, 2000)] if workers else [])
    for count, span in configs:
        verifier = verify_export_file(
            path, checkpoint=checkpoint, workers=count, span_bytes=span, min_parallel_bytes=0
        )
        runs.append(verifier.result())
    return [(r.valid, r.checked, r.first_bad_seq, r.code, r.root_hash) for r in runs]


def _rehashed(entries: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    """The chain from `start` on re-hashed after an edit, as a server rewriting history would."""
    out = copy.deepcopy(entries)
    for i in range(start, len(out)):
        if i:
            out[i]["prev_hash"] = out[i - 1]["hash"]
        data = E._validate(out[i], with_hash=True)
        out[i]["hash"] = hashlib.sha256(bytes.fromhex(out[i]["prev_hash"]) + data).hexdigest()
    return out


@pytest.mark.parametrize("at", [0, 20, 39], ids=["first", "middle", "last"])
@pytest.mark.parametrize(
    ("edit", "code"),
    [("content", "hash_mismatch"), ("rewritten", "checkpoint_root_mismatch"),
     ("hash", "hash_mismatch"), ("prev_hash", "prev_hash_mismatch")],
)  # fmt: skip
def test_a_tampered_entry_at_any_position_is_caught_by_the_block_path(
    at: int, edit: str, code: str, tmp_path: Path
) -> None:
    good = _chain(40)
    note = _note(good)
    entries = copy.deepcopy(good)
    if edit == "content":
        entries[at]["purpose"] = "marketing"
    elif edit == "rewritten":
        entries[at]["purpose"] = "marketing"
        entries = _rehashed(entries, at)
    elif edit == "hash":
        entries[at]["hash"] = hashlib.sha256(b"forged").hexdigest()
    else:
        entries[at]["prev_hash"] = hashlib.sha256(b"forged").hexdigest()
    raw = _export(entries).encode()
    block = check_block(raw)
    lines = raw.split(b"\n")
    if edit == "rewritten":  # the chain holds: only the Merkle root, at the head's size, tells
        assert block.count == 40
    else:  # the fast path took the lines before, and not the tampered one
        assert (block.count, block.stop) == (at, sum(len(x) + 1 for x in lines[:at]))
    expected = _reference(raw, note)
    first_bad = None if edit == "rewritten" else at
    assert expected[:4] == (False, 40 if edit == "rewritten" else at, first_bad, code)
    assert _every_path(raw, note, tmp_path, workers=at == 20) == [expected] * (4 if at == 20 else 3)


@pytest.mark.parametrize("at", [0, 19, 38], ids=["first", "middle", "last"])
def test_a_reordered_pair_is_caught_by_the_block_path(at: int, tmp_path: Path) -> None:
    good = _chain(40)
    note = _note(good)
    entries = [*good[:at], good[at + 1], good[at], *good[at + 2 :]]
    raw = _export(entries).encode()
    block = check_block(raw)
    # The block takes the lines before the pair; from the first line on, the pair's first
    # entry (seq 1), which its caller does not take: the log starts at 0.
    assert (block.count, block.first_seq) == ((at, 0) if at else (1, 1))
    expected = _reference(raw, note)
    assert expected[:4] == (False, at, at, "seq_gap")
    assert _every_path(raw, note, tmp_path, workers=at == 19) == [expected] * (4 if at == 19 else 3)


@pytest.mark.parametrize(
    "cut",
    [-1, -10, -700, 300, None],
    ids=["newline", "in-last", "line-before", "in-first", "lines"],
)
def test_a_truncated_export_is_caught_by_the_block_path(cut: int | None, tmp_path: Path) -> None:
    """Cut at a byte (inside the last line, inside the line before, inside the first) or
    without its last 5 lines: never valid against the head of 40 entries. Without only its
    final line feed it is whole, and valid on every path."""
    good = _chain(40)
    note = _note(good)
    raw = _export(good).encode()
    raw = _export(good[:35]).encode() if cut is None else raw[:cut]
    expected = _reference(raw, note)
    if cut == -1:
        assert expected[:4] == (True, 40, None, None)
    elif cut is None:
        assert expected[:4] == (False, 35, 35, "checkpoint_beyond_entries")
    else:
        assert not expected[0] and expected[3] == "malformed"
    assert _every_path(raw, note, tmp_path, workers=cut == -700) == [expected] * (
        4 if cut == -700 else 3
    )


def test_a_line_feed_inside_a_string_is_never_taken(tmp_path: Path) -> None:
    """A server that hashes a raw line feed inside a member (not canonical JSON: JCS writes
    `\\n`) and chains on from it: the block path, whose strings are runs of anything but a
    quote, must not take the two half-lines as one entry."""
    good = _chain(40)
    entries = copy.deepcopy(good)
    entries[20]["actor_role"] = "st\naff"
    raw_lines = [_line(e) for e in entries]
    prev = bytes.fromhex(entries[20]["prev_hash"])
    for i in range(20, 40):  # hash the raw text, as the forging server does
        obj = json.loads(raw_lines[i]) if i != 20 else entries[20]
        if i:
            obj["prev_hash"] = prev.hex()
        text = _line(obj).replace("\\n", "\n")
        unhashed = text.replace(f',"hash":"{obj["hash"]}"', "")
        obj["hash"] = hashlib.sha256(prev + unhashed.encode()).hexdigest()
        raw_lines[i] = _line(obj).replace("\\n", "\n")
        prev = bytes.fromhex(obj["hash"])
    raw = ("\n".join(raw_lines) + "\n").encode()
    assert check_block(raw).count == 20
    note = _note(good)
    expected = _reference(raw, note)
    assert expected[:4] == (False, 20, 20, "malformed")
    assert _every_path(raw, note, tmp_path) == [expected] * 4


def test_non_ascii_and_escaped_entries_are_taken_line_by_line(tmp_path: Path) -> None:
    entries = _chain(40, actor_role="Stäff", purpose='quote " and \\ and \t')
    raw = _export(entries).encode()
    assert check_block(raw).count == 0  # an escape: not a canonical line of the fast pattern
    plain = _chain(40, actor_role="Stäff")
    raw = _export(plain).encode()
    block = check_block(raw)
    assert (block.count, block.stop) == (40, None)
    note = _note(plain)
    assert _every_path(raw, note, tmp_path, workers=False) == [_reference(raw, note)] * 3


@given(position=st.integers(0, 10_000), char=st.characters(max_codepoint=0x2FF))
@settings(max_examples=1500, deadline=None)
def test_no_single_character_change_is_taken_by_a_block_unless_it_is_a_valid_entry(
    position: int, char: str
) -> None:
    """Change one character of the middle line of three and re-hash it as a forger would:
    the block path may take that line only if the exact path takes the parsed entry too,
    with the same bytes."""
    entries = _chain(3)
    line = _line(entries[1])
    at = position % len(line)
    changed = line[:at] + char + line[at + 1 :]
    stated = entries[1]["hash"]
    member = f',"hash":"{stated}"'
    if member in changed:
        unhashed = changed.replace(member, "").encode("utf-8", "surrogatepass")
        prev = bytes.fromhex(entries[0]["hash"])
        forged = hashlib.sha256(prev + unhashed).hexdigest()
        changed = changed.replace(stated, forged)
    raw = (_line(entries[0]) + "\n" + changed + "\n").encode("utf-8", "surrogatepass")
    block = check_block(raw)
    if block.count < 2:
        return
    parsed = json.loads(changed)
    verifier = LogVerifier(start_seq=1, prev_hash=bytes.fromhex(entries[0]["hash"]))
    assert verifier._feed_exactly(parsed, 1)
    assert block.last_hash.hex() == parsed["hash"]


@given(
    strings=st.lists(_text, min_size=9, max_size=9),
    optional=st.lists(st.booleans(), min_size=5, max_size=5),
    categories=st.lists(_text, max_size=5, unique=True),
    seq=st.integers(0, 2**54),
    producer_seq=st.integers(0, 2**54),
)
@settings(max_examples=300, deadline=None)
def test_a_block_takes_a_random_entry_only_with_its_exact_bytes(
    strings: list[str],
    optional: list[bool],
    categories: list[str],
    seq: int,
    producer_seq: int,
) -> None:
    prev = hashlib.sha256(strings[0].encode()).digest()
    entry = E.make_entry(
        seq=seq,
        prev_hash=prev,
        event_id=strings[0],
        producer=strings[1],
        producer_seq=producer_seq,
        event_type=strings[2],
        action="share",
        subject_id=strings[3] if optional[0] else None,
        actor_id=strings[4] if optional[1] else None,
        actor_role=strings[5] if optional[2] else None,
        purpose=strings[6] if optional[3] else None,
        resource={"type": strings[7], "id": strings[8]} if optional[4] else None,
        categories=categories,
        occurred_at=T0,
        recorded_at=T0,
    )
    obj = entry.to_json()
    block = check_block((_line(obj) + "\n").encode())
    if block.count:
        exact = E._validate(obj, with_hash=True)
        assert (block.first_seq, block.first_prev, block.last_hash) == (seq, prev.hex(), entry.hash)
        assert block.subtrees == ((0, hash_leaf(exact)),)
    plain = all(s.isascii() and s.isprintable() and '"' not in s and "\\" not in s for s in strings)
    if plain and max(seq, producer_seq) < 2**53 and all(c.isascii() for c in categories):
        assert block.count == 1


def test_subtrees_are_cut_at_the_sizes_where_a_root_is_due(tmp_path: Path) -> None:
    entries = _chain(40)
    raw = _export(entries).encode()
    block = check_block(raw, due=(7, 32, 40, 99))
    ends, at = [], 0
    for level, _ in block.subtrees:
        at += 1 << level
        ends.append(at)
    assert {7, 32, 40} <= set(ends)
    verifier = LogVerifier(frontier=Frontier(0), roots_at=(7, 32))
    assert verifier.feed_subtrees(block.subtrees, block.last_hash)
    leaves = [E.leaf_hash(E.entry_bytes(e)) for e in entries]
    assert verifier.root_at(7) == root_from_leaf_hashes(leaves[:7])
    assert verifier.root() == root_from_leaf_hashes(leaves)
    assert verifier.prev_hash.hex() == entries[-1]["hash"]


def test_subtrees_that_do_not_fit_the_tree_are_refused_and_change_nothing() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(8)]
    verifier = LogVerifier(frontier=Frontier(0), roots_at=(3,))
    assert verifier.feed_subtrees(subtrees_of_range(0, leaves[:2]), b"\x01" * 32)
    with pytest.raises(ValueError, match="aligned"):  # a level-2 subtree cannot start at 2
        verifier.feed_subtrees(subtrees_of_range(4, leaves[4:8]), b"\x02" * 32)
    with pytest.raises(ValueError, match="due"):  # leaves 2..3 span the root due at 3
        verifier.feed_subtrees([(1, hash_children(leaves[2], leaves[3]))], b"\x02" * 32)
    assert (verifier.next_seq, verifier.prev_hash) == (2, b"\x01" * 32)
    cut_at_3 = subtrees_of_range(2, leaves[2:3]) + subtrees_of_range(3, leaves[3:8])
    assert verifier.feed_subtrees(cut_at_3, b"\x03" * 32)
    assert verifier.root_at(3) == root_from_leaf_hashes(leaves[:3])
    assert verifier.root() == root_from_leaf_hashes(leaves)


@given(start=st.integers(0, 2**20), count=st.integers(0, 70), split=st.integers(0, 70))
@settings(max_examples=200, deadline=None)
def test_subtrees_of_ranges_fold_to_the_root_of_all_leaves(
    start: int, count: int, split: int
) -> None:
    """Two ranges of a tree's leaves, folded one after the other onto the frontier before
    them, give the root of the whole tree (as appending the leaves one by one does)."""
    before = start % 37
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(before + count)]
    appender = TreeAppender()
    appender.extend(leaves[:before])
    prev = b"\x05" * 32 if before else E.ZERO_HASH
    verifier = LogVerifier(start_seq=before, prev_hash=prev, frontier=appender.frontier)
    cut = before + min(split, count)
    assert verifier.feed_subtrees(subtrees_of_range(before, leaves[before:cut]), b"\x06" * 32)
    assert verifier.feed_subtrees(subtrees_of_range(cut, leaves[cut:]), b"\x07" * 32)
    assert verifier.root() == root_from_leaf_hashes(leaves)
    assert verifier.next_seq == before + count
