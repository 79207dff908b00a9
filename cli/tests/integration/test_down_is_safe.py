"""`mmgen down` signals only processes it started: a recycled pid is left alone."""

from __future__ import annotations

import subprocess
import sys
import time

from mmgen.cli import stack
from mmgen.localstack.processes import pid_alive


def test_down_leaves_a_process_whose_command_differs_from_the_record(tmp_path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        config = stack.StackConfig(state_dir=tmp_path)
        stack.StackRecord(config.record_path).save(
            [
                stack.Component(
                    name="broker",
                    kind="broker",
                    host="127.0.0.1",
                    port=1,
                    pid=bystander.pid,
                    argv=["/not/what/runs", "broker"],
                    log=str(tmp_path / "broker.log"),
                    started_at=time.time(),
                ),
            ]
        )
        assert stack.down(config) == []
        assert pid_alive(bystander.pid)
        assert not config.record_path.exists()
    finally:
        bystander.kill()
        bystander.wait()
