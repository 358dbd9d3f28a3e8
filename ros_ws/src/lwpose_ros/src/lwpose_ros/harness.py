"""Run a private roscore and launch files in subprocesses (integration tests and benchmarks).

The environment comes from sourcing the workspace's ``devel/setup.bash`` so subprocesses see the
built messages and packages exactly as a user's shell does; ``ROS_MASTER_URI`` points at a
roscore on a free port so runs never touch a user's master.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import xmlrpc.client
from pathlib import Path


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def workspace_env(workspace: Path, port: int, log_dir: Path, pythonpath: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a shell that sourced ``workspace/devel/setup.bash``, with a private master
    on ``port``, logs under ``log_dir`` and ``pythonpath`` entries prepended."""
    setup = Path(workspace) / "devel" / "setup.bash"
    out = subprocess.run(["bash", "-c", f'source "{setup}" && env -0'], check=True, capture_output=True).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    env.update(ROS_MASTER_URI=f"http://localhost:{port}", ROS_HOSTNAME="localhost", ROS_HOME=str(log_dir),
               ROS_LOG_DIR=str(log_dir), PYTHONUNBUFFERED="1")
    env.pop("ROS_IP", None)
    env["PYTHONPATH"] = os.pathsep.join([*pythonpath, env.get("PYTHONPATH", "")]).strip(os.pathsep)
    return env


def master_up(uri: str) -> bool:
    """Whether a ROS master answers at ``uri``."""
    try:
        code, _, _ = xmlrpc.client.ServerProxy(uri).getPid("/lwpose_harness")
        return code == 1
    except OSError:
        return False


class Process:
    """A ROS command line in its own session, stopped like Ctrl-C (SIGINT), then killed if stuck."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.log_path = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT the process, wait up to ``timeout`` s, then SIGKILL its process group. Returns the exit code."""
        if self.running():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


class Roscore(Process):
    """``roscore -p PORT``, waited for until the master answers."""

    def __init__(self, port: int, env: dict[str, str], log: Path, timeout: float = 30.0) -> None:
        super().__init__(["roscore", "-p", str(port)], env, log)
        self.uri = f"http://localhost:{port}"
        deadline = time.monotonic() + timeout
        while not master_up(self.uri):
            if not self.running() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"roscore on port {port} did not start:\n{self.output()}")
            time.sleep(0.1)


def roslaunch(package: str, launch_file: str, args: dict[str, object], env: dict[str, str], log: Path) -> Process:
    """``roslaunch PACKAGE FILE name:=value ...`` against the master of ``env``."""
    argv = ["roslaunch", "--wait", package, launch_file, *(f"{k}:={v}" for k, v in args.items())]
    return Process(argv, env, log)
