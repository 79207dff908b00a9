"""The gateway's nginx.conf, run by a local nginx in front of a recording upstream: what reaches
the console and the services, with which headers, and what never does. Skipped where nginx is
not installed; the static checks in test_compose.py run everywhere."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pymongo
import pytest

from mmgen.localstack.ports import free_port
from mmgen.localstack.pytest_plugin import unique_name

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base" / "gateway" / "nginx.conf"


class Recorder(BaseHTTPRequestHandler):
    """Every upstream at once: answers 200 with what it was sent."""

    seen: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        Recorder.seen.append(record)
        body = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _wait_for(port: int, process: subprocess.Popen[str], deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"nginx stopped: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx does not listen on {port} after {deadline_s}s")


def _nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )
    if found is None:
        pytest.skip("nginx is not installed")
    return found


@contextlib.contextmanager
def running_gateway(root: Path, upstreams: dict[str, int]) -> Iterator[dict[str, int]]:
    """The gateway's nginx.conf on local ports, each service's upstream at the port given.
    Yields the API's port and the console's."""
    nginx = _nginx()
    ports = {"api": free_port(), "console": free_port()}
    text = CONFIG.read_text()
    text = re.sub(
        r"server ([a-z]+):\d+;",
        lambda match: f"server 127.0.0.1:{upstreams[match.group(1)]};",
        text,
    )
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{ports['api']};")
    text = text.replace("listen 8081;", f"listen 127.0.0.1:{ports['console']};")
    text = text.replace("/tmp/", f"{root}/").replace(
        "access_log /dev/stdout json;", "access_log off;"
    )
    config = root / "nginx.conf"
    config.write_text(text)
    process = subprocess.Popen(
        [nginx, "-e", "stderr", "-p", str(root), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(ports["api"], process)
        _wait_for(ports["console"], process)
        yield ports
    finally:
        process.terminate()
        process.wait(timeout=10)


SERVICES = ("identity", "projects", "profiles", "consent", "retention", "console")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """The gateway with every upstream the recorder."""
    _nginx()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        root = tmp_path_factory.mktemp("gateway")
        with running_gateway(root, dict.fromkeys(SERVICES, upstream.server_port)) as ports:
            yield ports
    finally:
        upstream.shutdown()


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    Recorder.seen.clear()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, json.loads(body) if body else None


def test_the_console_sees_the_origin_the_browser_used(gateway: dict[str, int]) -> None:
    """Host keeps its port and the scheme is forwarded, so the console's Origin check on a
    sign-in compares with what the browser sent."""
    status, seen = _get(gateway["console"], "/audit?q=1", {"Host": "localhost:8086"})
    assert status == 200
    assert seen["path"] == "/audit?q=1"
    assert seen["headers"]["host"] == "localhost:8086"
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_tls_ended_in_front_of_the_gateway_is_forwarded(gateway: dict[str, int]) -> None:
    """Kubernetes: the ingress controller ends TLS and says so; the console sees https."""
    headers = {"Host": "console.mmgen.example.com", "X-Forwarded-Proto": "https"}
    status, seen = _get(gateway["console"], "/api/session", headers)
    assert status == 200
    assert seen["headers"]["x-forwarded-proto"] == "https"
    assert seen["headers"]["host"] == "console.mmgen.example.com"
    # a client's own X-Forwarded-For is replaced, never extended
    _, seen = _get(gateway["console"], "/", {"X-Forwarded-For": "203.0.113.9"})
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"


@pytest.mark.parametrize("path", ["/metrics", "/readyz", "/internal/x"])
def test_the_consoles_operational_routes_are_not_reachable(
    gateway: dict[str, int], path: str
) -> None:
    status, body = _get(gateway["console"], path)
    assert status == 404 and body["status"] == 404
    assert Recorder.seen == []


def test_the_api_origin_still_routes_by_prefix_and_hides_internal_routes(
    gateway: dict[str, int],
) -> None:
    status, seen = _get(gateway["api"], "/identity/.well-known/jwks.json")
    assert status == 200 and seen["path"] == "/.well-known/jwks.json"
    status, _ = _get(gateway["api"], "/identity/internal/service-token")
    assert status == 404 and Recorder.seen == []
    status, _ = _get(gateway["api"], "/console/")
    assert status == 404 and Recorder.seen == [], "the console is not under the API's origin"


@pytest.fixture(scope="module")
def console_behind_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """The console app as the image runs it (uvicorn, proxy headers from the gateway only),
    in production with a master key of its own and its sessions in a database of the test
    session's MongoDB, behind the gateway; identity, consent and retention do not answer."""
    _nginx()  # skip before starting the local database for nothing
    mongo_uri: str = request.getfixturevalue("mongo_uri")
    database = unique_name("t_console_")
    port, nowhere = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CONSOLE_ENVIRONMENT": "production",
        "CONSOLE_MONGO_URI": mongo_uri,
        "CONSOLE_MONGO_DATABASE": database,
        "CONSOLE_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode("ascii"),
        "CONSOLE_IDENTITY_URL": f"http://127.0.0.1:{nowhere}",
        "CONSOLE_JWKS_URL": f"http://127.0.0.1:{nowhere}/.well-known/jwks.json",
        "CONSOLE_AUDIT_URL": f"http://127.0.0.1:{nowhere}",
        "CONSOLE_RETENTION_URL": f"http://127.0.0.1:{nowhere}",
        "CONSOLE_UPSTREAM_TIMEOUT_SECONDS": "2",
    }
    console = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "mmgen.console.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--proxy-headers",
            "--forwarded-allow-ips",
            "127.0.0.1",
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(port, console, deadline_s=60.0)
        root = tmp_path_factory.mktemp("gateway-console")
        upstreams = {**dict.fromkeys(SERVICES, nowhere), "console": port}
        with running_gateway(root, upstreams) as ports:
            yield ports["console"]
    finally:
        console.terminate()
        console.wait(timeout=10)
        with pymongo.MongoClient(mongo_uri) as client:
            client.drop_database(database)


def _sign_in(port: int, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = json.dumps({"email": "officer@example.com", "password": "x" * 12})
        connection.request(
            "POST",
            "/api/session",
            body=body,
            headers={"Content-Type": "application/json", **headers},
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_sign_in_through_the_gateway_passes_the_consoles_origin_check(
    console_behind_gateway: int,
) -> None:
    """From the console's own page the sign-in gets past the Origin check to identity (which
    does not answer here: 503); from another origin it is refused (403)."""
    port = console_behind_gateway
    same = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
    assert _sign_in(port, same) == 503
    tls = {
        "Host": "console.mmgen.example.com",
        "Origin": "https://console.mmgen.example.com",
        "X-Forwarded-Proto": "https",
    }
    assert _sign_in(port, tls) == 503
    assert _sign_in(port, {**same, "Origin": "http://evil.example"}) == 403
    assert _sign_in(port, {**tls, "X-Forwarded-Proto": "http"}) == 403
