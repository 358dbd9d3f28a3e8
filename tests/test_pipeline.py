"""AsyncEngine, sources and Pipeline with real OpenVINO inference on the store's model. Assertions
hold at any inference speed and precision: live-source drops come from a camera faster than any
CPU infers, counts have margins measured under bf16, f32 and f16."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from lwpose.pipeline import AsyncEngine, Pipeline
from lwpose.pipeline.sources import Frame, ImageSource, Source, SourceError, VideoSource, open_source, stream_names
from tests.media import write_clip


@pytest.fixture(scope="module")
def clips(video_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two short clips, a truncated one (bytes cut in half) and random bytes named .mp4."""
    d = tmp_path_factory.mktemp("clips")
    a = write_clip(video_path, d / "a.avi", 30)
    b = write_clip(video_path, d / "b.avi", 24)
    data = a.read_bytes()
    (d / "truncated.avi").write_bytes(data[: len(data) // 2])
    (d / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(200_000))
    return {"a": a, "b": b, "truncated": d / "truncated.avi", "corrupt": d / "corrupt.mp4", "dir": d}


def test_stream_names_are_short_unique_and_safe() -> None:
    specs = ["clips/walk.mp4", "other/walk.mp4", "0", "/dev/video1", "rtsp://u:p@cam.local:554/live?x=1",
             "imgs/", "imgs/*.jpg"]
    assert stream_names(specs) == ["walk", "walk-2", "cam0", "video1", "cam.local_554_live", "imgs", "imgs-2"]


def test_open_source_kinds(tmp_path: Path) -> None:
    assert isinstance(open_source(str(tmp_path)), ImageSource)
    assert isinstance(open_source(str(tmp_path / "*.png")), ImageSource)
    for live in ("0", "/dev/video0", "rtsp://host/stream", "http://host/video.mjpg"):
        assert open_source(live).live
    video = open_source(str(tmp_path / "clip.mp4"))
    assert isinstance(video, VideoSource) and not video.live
    with pytest.raises(SourceError, match="no such file"):
        video.open()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path)).open()


def test_video_source_reports_truncation(clips: dict[str, Path]) -> None:
    src = VideoSource(str(clips["truncated"]), live=False)
    src.open()
    with pytest.raises(SourceError, match=r"ended after \d+ of 30 frames"):
        while src.read() is not None:
            pass
    src.close()
    src = VideoSource(str(clips["a"]), live=False)
    src.open(start=25)
    numbers = []
    while (frame := src.read()) is not None:
        numbers.append(frame.number)
    assert numbers == [25, 26, 27, 28, 29] and src.length == 5


@pytest.mark.numerics
def test_engine_orders_results_per_stream_and_counts_drops(pose_model, video_path: Path) -> None:
    cap = cv2.VideoCapture(str(video_path))
    frames = [cap.read()[1] for _ in range(12)]
    engine = AsyncEngine(pose_model, nireq=2)
    got: dict[str, list] = {"x": [], "y": []}
    release = threading.Event()

    def on_result(r) -> None:
        release.wait(30)
        got[r.stream].append(r)

    for name in got:
        engine.add_stream(name, on_result)
    # both requests are held by the blocked callback: a live frame is dropped, not queued
    assert engine.submit("x", frames[0], 0.0) == 0
    assert engine.submit("y", frames[0], 0.0) == 0
    assert engine.try_submit("x", frames[1], 0.1) is None
    assert engine.drops("x") == 1 and engine.drops("y") == 0
    release.set()

    def feed(name: str) -> None:
        for i, f in enumerate(frames[1:], 1):
            engine.submit(name, f, i / 10, meta=i)

    threads = [threading.Thread(target=feed, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.close()
    engine.close()  # idempotent
    for results in got.values():
        assert [r.index for r in results] == list(range(12))
        assert [r.meta for r in results[1:]] == list(range(1, 12))
        assert all(r.frame.shape == (576, 768, 3) for r in results)
        # measured 2.83-2.92 people a frame under bf16, f32 and f16 (vtest has 4-8 pedestrians)
        assert np.mean([len(r.people) for r in results]) >= 2
        assert any(p.track_id >= 0 for r in results for p in r.people)  # fragments may stay -1
        assert set(results[0].timings) >= {"queue", "infer", "decode", "track", "total"}
    with pytest.raises(RuntimeError, match="closed"):
        engine.submit("x", frames[0], 2.0)


def test_two_files_in_order_with_correct_counts(pose_model, clips: dict[str, Path]) -> None:
    seen: dict[str, list[int]] = {}
    with Pipeline(pose_model, [clips["a"], clips["b"]]) as pipeline:
        for stream, index, frame, people in pipeline:
            seen.setdefault(stream, []).append(index)
            assert frame.shape == (576, 768, 3) and isinstance(people, list)
    assert seen == {"a": list(range(30)), "b": list(range(24))}
    assert [s.status for s in pipeline.streams.values()] == ["done", "done"]


@pytest.mark.numerics
def test_image_folder_people_match_coco_visible_annotations(pose_model, coco_mini: Path) -> None:
    """Visible person = an annotation with num_keypoints > 0 (a box without a keypoint is not counted).
    Measured: the same counts (1, 3, 4, 5) under bf16, f32 and f16; the margin of one person a
    picture is for other CPUs' kernels."""
    ann = json.loads((coco_mini / "person_keypoints_mini.json").read_text())
    visible = {img["file_name"]: 0 for img in ann["images"]}
    by_id = {img["id"]: img["file_name"] for img in ann["images"]}
    for a in ann["annotations"]:
        if a["num_keypoints"] > 0 and not a.get("iscrowd"):
            visible[by_id[a["image_id"]]] += 1
    counts = {}
    for _, index, _, people in Pipeline(pose_model, coco_mini / "images"):
        counts[sorted(visible)[index]] = len(people)
        assert all(p.track_id == -1 for p in people)  # unrelated pictures are not tracked
    assert counts.keys() == visible.keys()
    for name, n in visible.items():
        assert abs(counts[name] - n) <= 1, (name, counts[name], n)


def test_broken_sources_are_reported_while_the_good_one_finishes(pose_model, clips: dict[str, Path]) -> None:
    sources = [clips["a"], clips["dir"] / "missing.mp4", clips["corrupt"], clips["truncated"]]
    with Pipeline(pose_model, sources) as pipeline:
        frames = {}
        for stream, index, _, _ in pipeline:
            frames.setdefault(stream, []).append(index)
    info = pipeline.streams
    assert info["a"].status == "done" and frames["a"] == list(range(30))
    assert info["missing"].status == "failed" and "missing.mp4: no such file" in info["missing"].error
    assert info["corrupt"].status == "failed" and "corrupt.mp4: not a readable video" in info["corrupt"].error
    assert info["truncated"].status == "failed" and "ended after" in info["truncated"].error
    assert 0 < len(frames["truncated"]) < 30
    assert [s.name for s in pipeline.failed] == ["missing", "corrupt", "truncated"]


def test_stop_delivers_frames_in_flight(pose_model, clips: dict[str, Path]) -> None:
    pipeline = Pipeline(pose_model, [clips["a"], clips["b"]])
    seen: dict[str, list[int]] = {"a": [], "b": []}
    for stream, index, _, _ in pipeline:
        seen[stream].append(index)
        if len(seen["a"]) + len(seen["b"]) == 6:
            pipeline.stop()
    for indices in seen.values():
        assert indices == list(range(len(indices)))
    assert sum(map(len, seen.values())) < 54
    assert {s.status for s in pipeline.streams.values()} <= {"stopped", "done"}


def test_leaving_the_loop_early_stops_every_thread(pose_model, clips: dict[str, Path]) -> None:
    pipeline = Pipeline(pose_model, [clips["a"], clips["b"]])
    for _ in pipeline:
        break
    assert not any(t.is_alive() for t in [*pipeline._readers, pipeline._supervisor])
    assert {s.status for s in pipeline.streams.values()} <= {"stopped", "done"}


class FakeCamera(Source):
    """A live source that breaks after ``fail_after`` frames of its first opening.

    Its frames come as fast as the reader takes them (microseconds apart), faster than any CPU
    infers (a millisecond or more a frame), so the pipeline must drop stale frames whatever the CPU.
    """

    live = True

    def __init__(self, frame: np.ndarray, frames: int, fail_after: int | None = None, opens: int = 99) -> None:
        super().__init__("fake-camera")
        self.frame, self.frames, self.fail_after, self.max_opens = frame, frames, fail_after, opens
        self.opens = self.count = 0

    def open(self, start: int = 0) -> None:
        if self.opens >= self.max_opens:
            raise SourceError("fake-camera: cannot open")
        self.opens += 1

    def read(self) -> Frame | None:
        if self.opens == 1 and self.fail_after is not None and self.count >= self.fail_after:
            raise SourceError("fake-camera: unplugged")
        if self.count >= self.frames:
            return None
        self.count += 1
        return Frame(self.frame, self.count - 1, time.time())


def test_live_source_drops_stale_frames_and_reconnects(pose_model, video_path: Path) -> None:
    frame = cv2.VideoCapture(str(video_path)).read()[1]
    cam = FakeCamera(frame, frames=40, fail_after=10)
    gone = FakeCamera(frame, frames=40, fail_after=3, opens=1)
    with Pipeline(pose_model, [cam, gone], names=["cam", "gone"], reconnect=1) as pipeline:
        numbers: dict[str, list[int]] = {"cam": [], "gone": []}
        for stream, number, _, _ in pipeline:
            numbers[stream].append(number)
    cam_info, gone_info = pipeline.streams["cam"], pipeline.streams["gone"]
    assert cam_info.status == "done" and cam_info.reconnects == 1 and cam.opens == 2
    assert cam_info.drops > 0 and cam_info.delivered > 0
    assert cam_info.delivered + cam_info.drops == 40 and len(numbers["cam"]) == cam_info.delivered
    assert numbers["cam"] == sorted(set(numbers["cam"]))  # newest frames, in order
    assert gone_info.status == "failed" and "gave up after 1 reconnection" in gone_info.error
    assert len(numbers["gone"]) <= 3

