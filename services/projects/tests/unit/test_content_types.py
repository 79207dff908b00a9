"""Content types are checked against the bytes' own signature, not the client's word."""

from __future__ import annotations

import itertools

import pytest

from mmgen.projects.domain.content_types import (
    SIGNATURES,
    TextValidator,
    declared_type_acceptable,
    normalise_content_type,
    signature_matches,
)
from mmgen.projects.testing import SAMPLES


def test_every_accepted_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(SIGNATURES)


@pytest.mark.parametrize(("declared", "actual"), list(itertools.product(SIGNATURES, SIGNATURES)))
def test_signature_matches_only_its_own_type(declared: str, actual: str) -> None:
    assert signature_matches(declared, SAMPLES[actual][:16]) is (declared == actual)


@pytest.mark.parametrize(
    "head",
    [
        b"<?php system($_GET['c']); ?>",  # a script is text, but not an image
        b"MZ\x90\x00\x03\x00\x00\x00",  # a Windows executable
        b"\x00\x00\x00\x18ftypqt  \x00\x00",  # QuickTime, not MP4
        b"\x00\x00\x00\x18ftypheic\x00\x00",  # HEIF, not MP4
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # WAV audio, not WebP
        b"",
    ],
)
def test_foreign_bytes_match_no_image_or_video(head: bytes) -> None:
    for content_type in ("image/png", "image/jpeg", "image/gif", "image/webp", "video/mp4"):
        assert not signature_matches(content_type, head)


@pytest.mark.parametrize(
    "binary",
    [b"\x00\x01\x02", b"abc\x1b[31m", b"\xff\xfe\x00a", b"caf\xe9", b"\x7f"],
)
def test_text_refuses_control_characters_and_invalid_utf8(binary: bytes) -> None:
    validator = TextValidator()
    assert not (validator.feed(binary) and validator.finish())


def test_text_accepts_a_character_split_across_pieces() -> None:
    data = "é日本".encode()
    validator = TextValidator()
    for i in range(len(data)):
        assert validator.feed(data[i : i + 1])
    assert validator.finish()


def test_text_refuses_a_character_cut_off_at_the_end() -> None:
    validator = TextValidator()
    assert validator.feed("日".encode()[:2])
    assert not validator.finish()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("image/png", "image/png"),
        ("Image/PNG", "image/png"),
        ("text/plain; charset=utf-8", "text/plain"),
        ('text/plain; charset="UTF-8"', "text/plain"),
        ("text/plain; charset=iso-8859-1", None),  # only UTF-8 text is checked as text
        ("text/html", None),
        ("application/octet-stream", None),
        ("image/svg+xml", None),  # scripts hide in SVG
    ],
)
def test_declared_types(raw: str, expected: str | None) -> None:
    assert declared_type_acceptable(raw, tuple(SIGNATURES)) == expected


def test_a_type_off_the_allow_list_is_refused_even_with_a_signature() -> None:
    assert declared_type_acceptable("video/mp4", ("image/png",)) is None
    assert normalise_content_type(" Video/MP4 ; codecs=avc1") == "video/mp4"
