"""Files through HTTP: streamed upload with its own body limit, 413 and 415 leaving nothing,
encrypted at rest (a raw scan of the database finds no plaintext), downloads streamed,
decrypted and recorded as access events."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from mmgen.projects.testing import (
    SAMPLES,
    generated,
    multipart_body,
    multipart_headers,
    multipart_stream,
)
from mmgen.runtime.testing import assert_problem
from services.projects.tests.projects_kit import Api

pytestmark = pytest.mark.asyncio(loop_scope="module")

MIB = 1024 * 1024
PDF_HEAD = SAMPLES["application/pdf"][:16]


async def _nothing_stored_since(api: Api, seq: int, project_id: str) -> None:
    """No file event, no file row, no upload in progress, and no chunk of a file that no
    row accounts for."""
    assert await api.events(producer_seq={"$gt": seq}, event_type="projects.FileUploaded") == []
    assert await api.db["files"].count_documents({"project_id": project_id}) == 0
    assert await api.db["file_uploads"].count_documents({}) == 0
    recorded = [d["file_id"] async for d in api.db["files"].find({}, {"file_id": 1})]
    assert await api.db["file_chunks"].count_documents({"file_id": {"$nin": recorded}}) == 0


async def test_a_file_above_the_platforms_body_limit_is_stored_and_comes_back(api: Api) -> None:
    team = await api.team()
    data = b"".join([piece async for piece in generated(2 * MIB + 123, head=PDF_HEAD)])
    response = await api.client.post(
        f"/projects/{team.project_id}/files",
        headers={**team.creator.headers, **multipart_headers()},
        content=multipart_body("../../Contract \u2013 final.pdf", "application/pdf", data),
    )
    assert response.status_code == 201, response.text
    file = response.json()
    assert file["filename"] == "Contract \u2013 final.pdf"  # the last path component only
    assert (file["size"], file["content_type"]) == (len(data), "application/pdf")
    assert file["uploader_id"] == team.creator.user_id

    download = await api.client.get(
        f"/projects/{team.project_id}/files/{file['file_id']}",
        headers=team.staff.headers,
    )
    assert download.status_code == 200, download.text
    assert download.content == data
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-length"] == str(len(data))
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith('attachment; filename="Contract')
    assert (
        "filename*=UTF-8''Contract%20%E2%80%93%20final.pdf"
        in (download.headers["content-disposition"])
    )
    [access] = [
        a
        for a in await api.accesses_of(team.staff.user_id)
        if a["data"]["route"] == "/projects/{project_id}/files/{file_id}"
    ]
    assert access["data"]["fields"] == ["filename", "content"]
    assert access["categories"] == ["files"]
    assert access["purpose"] == "project_execution"
    assert access["subject_id"] == team.creator.user_id  # whose file was read
    assert access["resource"]["id"] == f"file:{file['file_id']}"


async def test_a_streamed_file_over_the_limit_is_413_and_leaves_nothing(api: Api) -> None:
    team = await api.team()
    before = await api.service.kernel.store.last_seq()
    limit = api.service.settings.max_file_bytes
    body = multipart_stream("big.pdf", "application/pdf", generated(limit + 1, head=PDF_HEAD))
    response = await api.client.post(
        f"/projects/{team.project_id}/files",
        headers={**team.owner.headers, **multipart_headers()},
        content=body,
    )
    problem = assert_problem(response, 413, "file-too-large")
    assert problem["max_file_bytes"] == limit
    await _nothing_stored_since(api, before, team.project_id)


async def test_a_declared_body_over_the_routes_limit_is_413_before_it_is_read(api: Api) -> None:
    team = await api.team()
    before = await api.service.kernel.store.last_seq()
    read: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        async for piece in multipart_stream(
            "big.pdf", "application/pdf", generated(4 * MIB, head=PDF_HEAD)
        ):
            read.append(len(piece))
            yield piece

    size = 4 * MIB + len(multipart_body("big.pdf", "application/pdf", b""))
    response = await api.client.post(
        f"/projects/{team.project_id}/files",
        headers={**team.owner.headers, **multipart_headers(), "Content-Length": str(size)},
        content=body(),
    )
    assert_problem(response, 413, "request-body-too-large")
    assert read == []  # refused before the service took a byte of the body
    await _nothing_stored_since(api, before, team.project_id)
    # other routes keep the platform's limit
    big_message = await api.client.post(
        f"/projects/{team.project_id}/messages",
        headers=team.owner.headers,
        json={"text": "x" * (2 * MIB)},
    )
    assert_problem(big_message, 413, "request-body-too-large")


@pytest.mark.parametrize(
    ("declared", "data", "slug"),
    [
        ("image/png", SAMPLES["application/pdf"], "content-type-mismatch"),
        ("application/pdf", SAMPLES["image/gif"], "content-type-mismatch"),
        ("text/plain", b"plain until \x00 a control byte" * 10, "content-type-mismatch"),
        ("application/zip", b"PK\x03\x04" + b"\x00" * 200, "content-type-not-allowed"),
    ],
)
async def test_bytes_that_are_not_their_declared_type_are_415_and_leave_nothing(
    api: Api, declared: str, data: bytes, slug: str
) -> None:
    team = await api.team()
    before = await api.service.kernel.store.last_seq()
    response = await api.upload(
        team.owner, team.project_id, data, filename="x", content_type=declared
    )
    assert_problem(response, 415, slug)
    await _nothing_stored_since(api, before, team.project_id)


async def test_malformed_uploads_are_problems(api: Api) -> None:
    team = await api.team()
    not_multipart = await api.client.post(
        f"/projects/{team.project_id}/files",
        headers={**team.owner.headers, "Content-Type": "application/json"},
        content=b"{}",
    )
    assert_problem(not_multipart, 400, "multipart-invalid")
    empty = await api.upload(team.owner, team.project_id, b"", content_type="image/png")
    assert_problem(empty, 422, "file-empty")
    missing = await api.client.get(
        f"/projects/{team.project_id}/files/0192f0c4-7a8e-7b3c-8d2e-3f4a5b6c7d8e",
        headers=team.owner.headers,
    )
    assert_problem(missing, 404, "file-not-found")
    not_an_id = await api.client.get(
        f"/projects/{team.project_id}/files/not-a-uuid", headers=team.owner.headers
    )
    assert_problem(not_an_id, 422)


async def test_nothing_in_the_database_is_plaintext(api: Api) -> None:
    marker = "Ultramarine-Quokka-7741"
    team = await api.team(title=f"{marker} title", requirements=f"{marker} requirements")
    await api.post_message(team.creator, team.project_id, f"{marker} message")
    text = (f"{marker} file body, plain text, " * 40).encode()
    uploaded = await api.upload(
        team.owner, team.project_id, text, filename=f"{marker}.txt", content_type="text/plain"
    )
    assert uploaded.status_code == 201, uploaded.text
    listed = await api.client.get(f"/projects/{team.project_id}/files", headers=team.owner.headers)
    assert listed.json()["items"][0]["filename"] == f"{marker}.txt"
    download = await api.client.get(
        f"/projects/{team.project_id}/files/{uploaded.json()['file_id']}",
        headers=team.creator.headers,
    )
    assert download.content == text

    dump = await api.raw_dump()
    assert len(dump) > len(text)  # the scan saw the stored chunks
    for plain in (marker.encode(), marker.encode("utf-16-le"), hashlib.sha256(text).digest()):
        assert plain not in dump
