"""A service verifying tokens from identity's JWKS served by a real HTTP endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mmgen.platform import InMemoryDenialRecorder, PlatformApp, ServiceSettings
from mmgen.platform.auth import SigningKey, issue_token, jwks_document


class JwksServer:
    """A tiny identity stand-in: serves `GET /.well-known/jwks.json`, counts the hits."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                server.hits += 1
                body = json.dumps(
                    jwks_document({k.kid: k.public_key for k in server.keys})
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def identity() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


def jwks_settings(url: str, interval: float) -> ServiceSettings:
    return ServiceSettings(
        environment="test",
        service_name="jwks-test",
        jwt_audience="projects",
        jwks_url=url,
        jwks_min_refresh_interval_seconds=interval,
    )


async def test_tokens_verify_from_identitys_jwks_and_unknown_kids_are_rate_limited(
    identity: JwksServer,
    make_app: Callable[..., PlatformApp],
    serve: Any,
    recorder: InMemoryDenialRecorder,
) -> None:
    key = SigningKey.generate()
    identity.keys.append(key)
    app = make_app(settings=jwks_settings(identity.url, interval=3600), token_verifier=None)
    async with serve(app) as client:
        good = issue_token(key, subject="u1", role="client")
        response = await client.get("/widgets/1", headers={"Authorization": f"Bearer {good}"})
        assert response.status_code == 200
        assert identity.hits == 1

        for _ in range(5):
            forged = issue_token(SigningKey.generate(), subject="u1", role="admin")
            response = await client.get("/widgets/1", headers={"Authorization": f"Bearer {forged}"})
            assert response.status_code == 401
            assert response.json()["type"] == "urn:mmgen:problem:invalid-token"
        assert identity.hits == 1  # no refresh inside the interval
        assert len(recorder.denials) == 5


async def test_an_unknown_kid_is_401_after_a_refresh_and_a_rotated_key_verifies(
    identity: JwksServer, make_app: Callable[..., PlatformApp], serve: Any
) -> None:
    first, rotated = SigningKey.generate(), SigningKey.generate()
    identity.keys.append(first)
    app = make_app(settings=jwks_settings(identity.url, interval=0), token_verifier=None)
    async with serve(app) as client:
        stranger = issue_token(SigningKey.generate(), subject="x", role="admin")
        response = await client.get("/widgets/1", headers={"Authorization": f"Bearer {stranger}"})
        assert response.status_code == 401
        assert identity.hits == 1  # the refresh happened, the kid is still unknown

        identity.keys.append(rotated)
        token = issue_token(rotated, subject="u2", role="creator")
        response = await client.get("/widgets/1", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.json()["subject"] == "u2"
        assert identity.hits == 2


async def test_identity_down_answers_503_not_401(
    make_app: Callable[..., PlatformApp], serve: Any
) -> None:
    with JwksServer() as gone:
        url = gone.url
    app = make_app(settings=jwks_settings(url, interval=3600), token_verifier=None)
    async with serve(app) as client:
        token = issue_token(SigningKey.generate(), subject="u1", role="client")
        response = await client.get("/widgets/1", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.json()["type"] == "urn:mmgen:problem:signing-keys-unavailable"
    assert "retry-after" in response.headers
