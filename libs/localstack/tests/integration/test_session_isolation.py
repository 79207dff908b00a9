"""What the plugin promises a test session, checked on real pytest runs in a subprocess.

- Under pytest-xdist every worker has a broker and a database of its own, on ports of their
  own, with logs under a temporary folder of its own.
- A session that dies without tearing down (a crashed worker) leaves no broker or database
  running behind it.
- `--backend=containers` without a Docker engine fails the run with the reason; it does not
  go green having skipped every test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmgen.localstack.ports import port_is_open

HOST = "127.0.0.1"

WHERE_AM_I = """
import json, os, pathlib
from pymongo import MongoClient


def test_where(infra, tmp_path_factory):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with MongoClient(infra.mongo_uri) as client:
        client.probe.workers.insert_one({"_id": worker})
        workers = sorted(doc["_id"] for doc in client.probe.workers.find())
    report = {
        "kafka": infra.kafka_bootstrap,
        "mongo": infra.mongo_uri,
        "basetemp": str(tmp_path_factory.getbasetemp()),
        "logs": sorted(str(p) for p in tmp_path_factory.getbasetemp().glob("localstack*/*.log")),
        "workers_in_my_database": workers,
    }
    out = pathlib.Path(os.environ["REPORT_DIR"]) / f"{worker}.json"
    out.write_text(json.dumps(report))
"""

CRASH = """
import json, os, pathlib, signal


def test_crash(infra):
    addresses = [infra.kafka_bootstrap, infra.mongo_uri]
    (pathlib.Path(os.environ["REPORT_DIR"]) / "addresses.json").write_text(json.dumps(addresses))
    os.kill(os.getpid(), signal.SIGKILL)
"""

NEEDS_INFRA = """
def test_plain():
    pass


def test_with_infra(infra):
    pass
"""


def run_pytest(
    tmp_path: Path, source: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run pytest on one test file of `source`, in a folder of its own (no root settings)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (tmp_path / "test_inner.py").write_text(source)
    reports = tmp_path / "reports"
    reports.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MMGEN_TEST"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--basetemp", str(tmp_path / "base"), *args],
        cwd=tmp_path,
        env={**clean, "REPORT_DIR": str(reports), **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def port_of(address: str) -> int:
    return int(address.split("//")[-1].split("/")[0].rsplit(":", 1)[1])


@pytest.mark.slow
def test_each_xdist_worker_has_its_own_broker_database_and_folder(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, WHERE_AM_I, "-n", "2", "--dist", "each")
    assert result.returncode == 0, result.stdout + result.stderr
    reports = {
        path.stem: json.loads(path.read_text()) for path in (tmp_path / "reports").glob("*.json")
    }
    assert sorted(reports) == ["gw0", "gw1"]
    gw0, gw1 = reports["gw0"], reports["gw1"]
    ports = {port_of(r[key]) for r in (gw0, gw1) for key in ("kafka", "mongo")}
    assert len(ports) == 4, f"four distinct ports expected: {reports}"
    assert gw0["basetemp"] != gw1["basetemp"]
    for worker, report in reports.items():
        assert report["workers_in_my_database"] == [worker], "a database shared between workers"
        assert report["logs"], "no broker or database log"
        assert all(log.startswith(report["basetemp"]) for log in report["logs"])
        assert not port_is_open(HOST, port_of(report["kafka"]))
        assert not port_is_open(HOST, port_of(report["mongo"]))


@pytest.mark.slow
@pytest.mark.parametrize("xdist", [["-n", "1", "--max-worker-restart", "0"], ["-p", "no:xdist"]])
def test_a_session_killed_mid_run_leaves_no_broker_or_database(
    tmp_path: Path, xdist: list[str]
) -> None:
    result = run_pytest(tmp_path, CRASH, *xdist)
    assert result.returncode != 0, result.stdout + result.stderr
    addresses = json.loads((tmp_path / "reports" / "addresses.json").read_text())
    ports = [port_of(address) for address in addresses]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(port_is_open(HOST, port) for port in ports):
        time.sleep(0.1)
    assert [port for port in ports if port_is_open(HOST, port)] == []
    assert leftovers(ports) == []


def leftovers(ports: list[int]) -> list[str]:
    """Live processes started for these ports (the broker names its port in its argv)."""
    needles = [f":{port}".encode() for port in ports] + [
        f"--port\0{port}\0".encode() for port in ports
    ]
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(needle in cmdline for needle in needles):
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.mark.parametrize("xdist", [["-p", "no:xdist"], ["-n", "2"]])
def test_containers_backend_without_docker_fails_the_run(tmp_path: Path, xdist: list[str]) -> None:
    result = run_pytest(
        tmp_path,
        NEEDS_INFRA,
        "--backend=containers",
        *xdist,
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker-here.sock"},
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode not in (0, 5), output
    assert "--backend=containers needs a Docker engine" in output
    assert "no Docker engine answers" in output
    assert "passed" not in output and "skipped" not in output
