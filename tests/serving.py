"""``lwpose serve`` subprocesses on free 127.0.0.1 ports, for the remote-inference tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The served model name the tests use in their URLs.
NAME = "hpe"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """One ``lwpose serve`` subprocess on free ports."""

    def __init__(self, model: Path, *extra: str) -> None:
        self.grpc_port, self.http_port = free_port(), free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lwpose", "serve", "--model", str(model), "--served-name", NAME,
             "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port), *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    @property
    def grpc(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}/{NAME}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v2/models/{NAME}"

    def wait_ready(self, timeout: float = 180.0) -> "Served":
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lwpose serve exited {self.proc.returncode}: {self.proc.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v2/models/{NAME}/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.proc.kill()
        raise RuntimeError("lwpose serve did not get ready")

    def stop(self) -> int:
        """SIGTERM, and the exit status (after a graceful shutdown: 0)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        return self.proc.returncode
