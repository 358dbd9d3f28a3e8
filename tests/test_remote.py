"""Remote inference: ``lwpose serve`` subprocesses on free 127.0.0.1 ports, ``KServeBackend`` clients
and ``lwpose run --server``.

Results through a server equal local inference on the same frames (same people; keypoints within
``TOLERANCE_PX`` image pixels), also for a whole ``lwpose run``; several servers share the load,
survive one being killed (a run still writes every frame), and a clear error names them when none
is up (``lwpose run`` exits 2).
"""
from __future__ import annotations

import importlib.util
import json
import threading
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc", reason="remote inference needs tritonclient (pip install 'lwpose[remote]')")
# not imported: kserve and tritonclient.grpc register the same protobuf names, one process holds only one
if importlib.util.find_spec("kserve") is None:
    pytest.skip("lwpose serve needs kserve (pip install 'lwpose[serve]')", allow_module_level=True)

from lwpose import decode  # noqa: E402
from lwpose.cli import main  # noqa: E402
from lwpose.backends import Backend  # noqa: E402
from lwpose.backends.kserve import KServeBackend  # noqa: E402
from lwpose.errors import LwposeError  # noqa: E402
from lwpose.pose import Person, people_from_arrays  # noqa: E402
from tests.media import write_clip  # noqa: E402
from tests.serving import NAME, Served, free_port  # noqa: E402

pytestmark = pytest.mark.slow
HEIGHT = 256
#: keypoints of the same person, local vs remote, image pixels (the same network and precision on
#: both sides: equal in practice; the margin covers float summation order)
TOLERANCE_PX = 1.0


@pytest.fixture(scope="module")
def servers(ir_path: Path):
    """Five servers started together: a, b (u8 frames), doomed and doomed_run (each killed by a
    test), native (FP32 NCHW)."""
    started = {"a": Served(ir_path), "b": Served(ir_path), "doomed": Served(ir_path), "doomed_run": Served(ir_path),
               "native": Served(ir_path, "--native-input")}
    try:
        for served in started.values():
            served.wait_ready()
        yield started
    finally:
        codes = {name: served.stop() for name, served in started.items()}
    assert codes["a"] == codes["b"] == codes["native"] == 0, f"not a graceful shutdown: {codes}"


@pytest.fixture(scope="module")
def frames(video_path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video_path))
    out = []
    for i in range(60):
        ok, frame = cap.read()
        assert ok
        if i % 10 == 0:  # people move between the frames used
            out.append(frame)
    cap.release()
    return out


def people(backend_outputs, scale: float):
    heatmaps, pafs = backend_outputs
    return people_from_arrays(*decode.group(heatmaps, pafs, stride=8), scale)


def assert_same_people(local, remote) -> None:
    """The same people, with the same keypoints found, each within TOLERANCE_PX."""
    assert len(local) == len(remote), f"{len(local)} people locally, {len(remote)} remotely"
    for person in local:
        found = person.keypoints[:, 2] > 0
        best = min(remote, key=lambda other: np.abs(other.keypoints[:, :2] - person.keypoints[:, :2])[found].sum())
        assert np.array_equal(best.keypoints[:, 2] > 0, found), "other keypoints found"
        assert np.abs(best.keypoints[found, :2] - person.keypoints[found, :2]).max() <= TOLERANCE_PX


@pytest.mark.parametrize("which", ["grpc", "http", "native"])
def test_remote_equals_local(servers, pose_model, frames, which: str) -> None:
    """The native form (the Open Model Zoo IR's FP32 NCHW 256x456 input) gets 16:9 frames, which
    fill that static width exactly; test_native_pads_narrow_frames covers the other frames."""
    url = getattr(servers["native" if which == "native" else "a"], "http" if which == "http" else "grpc")
    backend = KServeBackend([url])
    assert isinstance(backend, Backend)
    backend.compile(HEIGHT)
    try:
        total = 0
        for frame in frames:
            if which == "native":
                frame = cv2.resize(frame, (912, 513))  # network input 256x456
            tensor, scale = pose_model.prepare(frame)
            heatmaps, pafs = backend.infer(tensor)
            maps = pose_model.infer(frame)
            assert heatmaps.shape == maps.heatmaps.shape and pafs.shape == maps.pafs.shape
            local = pose_model.people(maps)
            assert_same_people(local, people((heatmaps, pafs), scale))
            total += len(local)
        assert total >= len(frames)  # the clip has people in it
    finally:
        backend.close()


def test_native_pads_narrow_frames(servers, pose_model, frames) -> None:
    """A 4:3 frame (input 256x344) is padded to the served 456 and the outputs cropped back; the
    network then sees other context near the right edge, so only the best person is compared."""
    backend = KServeBackend([servers["native"].grpc])
    backend.compile(HEIGHT)
    tensor, scale = pose_model.prepare(frames[0])
    heatmaps, pafs = backend.infer(tensor)
    backend.close()
    maps = pose_model.infer(frames[0])
    assert heatmaps.shape == maps.heatmaps.shape and pafs.shape == maps.pafs.shape
    x, y, _, _ = max(pose_model.people(maps), key=lambda p: p.score).bbox
    assert min(abs(x - rx) + abs(y - ry) for rx, ry, _, _ in (p.bbox for p in people((heatmaps, pafs), scale))) <= 8


def test_two_servers_share_the_load(servers, pose_model, frames) -> None:
    backend = KServeBackend([servers["a"].grpc, servers["b"].http], capacity=4)
    backend.compile(HEIGHT)
    tensors = [pose_model.prepare(f)[0] for f in frames] * 4
    results: dict[int, tuple] = {}
    for i, tensor in enumerate(tensors):
        backend.submit(tensor, lambda out, err, i=i: results.__setitem__(i, (out is not None, err)))
    backend.wait()
    backend.close()
    assert sorted(results) == list(range(len(tensors)))
    assert all(ok and err is None for ok, err in results.values())
    assert all(server.sent > 0 for server in backend.servers), [s.sent for s in backend.servers]


def test_a_server_killed_mid_run_loses_no_frame(servers, pose_model, frames) -> None:
    doomed = servers["doomed"]
    backend = KServeBackend([servers["a"].grpc, doomed.http], capacity=4, probe_after=60)
    backend.compile(HEIGHT)
    tensor = pose_model.prepare(frames[0])[0]
    results: list = []
    lock = threading.Lock()

    def done(out, err) -> None:
        with lock:
            results.append((out is not None, err))

    for i in range(40):
        if i == 12:
            doomed.proc.kill()  # with requests in flight on it
        backend.submit(tensor, done)
    backend.wait()
    backend.close()
    assert len(results) == 40
    assert all(ok and err is None for ok, err in results), [err for _, err in results if err]
    assert backend.servers[1].dead_until > 0, "the killed server was not marked down"


def test_submit_refuses_when_full(servers, pose_model, frames) -> None:
    backend = KServeBackend([servers["b"].grpc], capacity=1)
    backend.compile(HEIGHT)
    tensor = pose_model.prepare(frames[0])[0]
    release = threading.Event()
    assert backend.submit(tensor, lambda out, err: release.wait(30))
    assert backend.submit(tensor, lambda out, err: None, block=False) is False
    release.set()
    backend.wait()
    assert backend.submit(tensor, lambda out, err: None, block=False) is True
    backend.close()


def test_metadata_and_health(servers) -> None:
    import json

    base = f"http://127.0.0.1:{servers['a'].http_port}"
    with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=5) as r:
        assert r.status == 200
    with urllib.request.urlopen(f"{base}/v2/models/{NAME}", timeout=5) as r:
        meta = json.load(r)
    assert meta["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [1, HEIGHT, -1, 3]}]
    assert [o["name"] for o in meta["outputs"]] == ["heatmaps", "pafs"]


def test_no_server_up_names_them() -> None:
    urls = [f"grpc://127.0.0.1:{free_port()}/{NAME}", f"http://127.0.0.1:{free_port()}/v2/models/{NAME}"]
    backend = KServeBackend(urls)
    with pytest.raises(LwposeError) as err:
        backend.compile(HEIGHT)
    assert all(url in str(err.value) for url in urls)
    backend.close()


def test_bad_url() -> None:
    with pytest.raises(LwposeError, match="grpc://HOST:PORT/MODEL"):
        KServeBackend(["http://127.0.0.1:8000/hpe"])


CLIP_FRAMES = 48
#: the clip of the kill test: long enough that the kill lands well inside the run, also under load
LONG_CLIP_FRAMES = 150


@pytest.fixture(scope="module")
def clip(video_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(video_path, tmp_path_factory.mktemp("remote") / "clip.avi", CLIP_FRAMES)


@pytest.fixture(scope="module")
def long_clip(video_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(video_path, tmp_path_factory.mktemp("remote") / "clip.avi", LONG_CLIP_FRAMES)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_through_a_server_equals_the_local_run(servers, ir_path: Path, clip: Path, tmp_path: Path) -> None:
    """Same people in every frame, keypoints within TOLERANCE_PX (tracking and smoothing are
    deterministic given the same detections, so they are on)."""
    for where, extra in (("local", ["--model", str(ir_path)]), ("remote", ["--server", servers["a"].grpc])):
        assert main(["run", str(clip), "--quiet", "--out", str(tmp_path / where), *extra]) == 0
    local, remote = jsonl(tmp_path / "local/clip.jsonl"), jsonl(tmp_path / "remote/clip.jsonl")
    assert [r["frame"] for r in local] == [r["frame"] for r in remote] == list(range(CLIP_FRAMES))
    for a, b in zip(local, remote):
        assert_same_people([Person.from_dict(p) for p in a["people"]], [Person.from_dict(p) for p in b["people"]])


def test_run_over_two_servers_survives_one_killed(servers, long_clip: Path, tmp_path: Path) -> None:
    """``lwpose run CLIP --server A B``: B is killed once a few frames are written; every frame
    of the clip still ends up in the output."""
    doomed = servers["doomed_run"]
    out = tmp_path / "out"
    stop = threading.Event()

    def kill_once_started() -> None:
        while not stop.wait(0.02):
            written = sum(len(p.read_text().splitlines()) for p in out.glob(".clip.jsonl.*"))
            if written >= 5:
                doomed.proc.kill()
                return

    killer = threading.Thread(target=kill_once_started)
    killer.start()
    try:
        rc = main(["run", str(long_clip), "--quiet", "--out", str(out), "--server", servers["b"].grpc, doomed.http])
    finally:
        stop.set()
        killer.join()
    assert doomed.proc.poll() is not None, "the server was not killed during the run"
    assert rc == 0
    assert [r["frame"] for r in jsonl(out / "clip.jsonl")] == list(range(LONG_CLIP_FRAMES))


def test_run_with_no_server_up_exits_2_naming_it(clip: Path, tmp_path: Path, capsys) -> None:
    url = f"grpc://127.0.0.1:{free_port()}/{NAME}"
    assert main(["run", str(clip), "--quiet", "--out", str(tmp_path), "--server", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and url in err[0] and "no inference server is up" in err[0]


def test_bench_reports_the_remote_figures(servers, ir_path: Path, video_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", str(ir_path), "--source", str(video_path), "--frames", "16", "--streams", "1",
                 "--server", servers["a"].grpc, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["servers"] == [servers["a"].grpc] and report["cpu_model"]
    run = report["runs"][0]
    assert run["remote_e2e_fps"] > 0 and run["e2e_fps"] > 0 and run["remote_client_cpu_ms_per_frame"] > 0
    assert run["remote_bytes_sent_per_frame"] == 256 * 344 * 3  # the u8 input tensor
    assert run["remote_bytes_received_per_frame"] == (19 + 38) * 32 * 43 * 4  # float32 maps at stride 8
