"""``lwpose run``: outputs, failures, signals and argument errors, with real inference."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from lwpose.cli import main
from tests.media import write_clip

ROOT = Path(__file__).resolve().parents[1]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


@pytest.mark.numerics
def test_two_streams_write_ordered_json_lines_and_videos(ir_path: Path, video_path: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    a = write_clip(video_path, tmp_path / "a.avi", 20)
    out = tmp_path / "out"
    rc = main(["run", str(a), str(video_path), "--model", str(ir_path), "--out", str(out), "--save-video",
               "--max-frames", "25", "--quiet"])
    assert rc == 0
    for name, n in (("a", 20), (video_path.stem, 25)):
        lines = read_jsonl(out / f"{name}.jsonl")
        assert [r["frame"] for r in lines] == list(range(n))
        assert {r["stream"] for r in lines} == {name}
        assert lines[3]["timestamp"] == pytest.approx(0.3)
        people = [p for r in lines for p in r["people"]]
        assert len(people) / n >= 2 and len(people[0]["keypoints"]) == 18  # measured 2.8-3.4 (bf16, f32, f16)
        whole = [p for p in people if sum(k[2] > 0 for k in p["keypoints"]) >= 6]
        assert whole and all(p["track_id"] >= 0 for p in whole)  # only fragments may stay untracked (-1)
        assert video_frames(out / f"{name}.mp4") == n
    summary = capsys.readouterr().out
    assert "45 frames" in summary and "done" in summary


def test_failed_streams_are_named_and_exit_2(ir_path: Path, video_path: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    good = write_clip(video_path, tmp_path / "good.avi", 20)
    (tmp_path / "bad.mp4").write_bytes(os.urandom(50_000))
    out = tmp_path / "out"
    rc = main(["run", str(good), str(tmp_path / "bad.mp4"), str(tmp_path / "nope.avi"), "--model", str(ir_path),
               "--out", str(out), "--quiet"])
    assert rc == 2
    assert len(read_jsonl(out / "good.jsonl")) == 20
    text = capsys.readouterr().out
    assert f"failed: bad ({tmp_path / 'bad.mp4'})" in text and f"failed: nope ({tmp_path / 'nope.avi'})" in text


def test_sigint_finishes_and_leaves_complete_outputs(ir_path: Path, video_path: Path, tmp_path: Path) -> None:
    """Paced at 10 frames/s (--fps-limit), the 60-frame clip lasts 6 s on any CPU: SIGINT comes mid-run."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "lwpose", "run", str(video_path), str(video_path), "--model",
                             str(ir_path), "--out", str(out), "--save-video", "--quiet", "--fps-limit", "10"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jsonl = out / f"{video_path.stem}.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(  # written under a temporary name until the end
            p.read_text().count("\n") >= 5 for p in out.glob(f".{jsonl.name}.*")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "SIGINT: finishing the frames in flight" in stderr and "stopped" in stdout
    for name in (video_path.stem, f"{video_path.stem}-2"):
        lines = read_jsonl(out / f"{name}.jsonl")  # every line parses
        assert 5 <= len(lines) < 60 and [r["frame"] for r in lines] == list(range(len(lines)))
        assert video_frames(out / f"{name}.mp4") == len(lines)


def test_show_without_gui_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if "NONE" not in [line.split(":")[-1].strip() for line in cv2.getBuildInformation().splitlines()
                      if line.strip().startswith("GUI:")]:
        pytest.skip("this OpenCV has a GUI")
    assert main(["run", "0", "--show", "--out", str(tmp_path)]) == 2
    assert "--show needs OpenCV with GUI support" in capsys.readouterr().err


def test_cli_shows_the_pipeline_defaults_without_loading_it() -> None:
    """``lwpose.pipeline.defaults`` is the one place of the defaults ``lwpose run --help`` shows,
    and building the command line loads neither OpenVINO nor the pipeline."""
    code = ("import sys, lwpose.cli\n"
            "help = lwpose.cli.build_parser()._subparsers._group_actions[0].choices['run'].format_help()\n"
            "loaded = [m for m in ('openvino', 'lwpose.pipeline.pipeline', 'lwpose.runtime') if m in sys.modules]\n"
            "assert not loaded, loaded\n"
            "from lwpose.pipeline import defaults\n"
            "assert f'at most {defaults.MAX_BACKOFF:g} s' in ' '.join(help.split()), help\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_timeout_must_be_positive_and_finite(value: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "x.mp4", "--timeout", value, "--out", str(tmp_path)]) == 2
    assert "lwpose run: error: --timeout must be a positive number of seconds" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--max-frames", "--nireq", "--reconnect", "--fps-limit"])
def test_negative_numbers_are_rejected(option: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "x.mp4", option, "-1", "--out", str(tmp_path)]) == 2
    assert f"lwpose run: error: {option} must be >= 0" in capsys.readouterr().err


def test_help_explains_options() -> None:
    out = subprocess.run([sys.executable, "-m", "lwpose", "run", "--help"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    for option in ("--mode", "--nireq", "--threads", "--height", "--save-video", "--show", "--max-frames",
                   "--start", "--fps-limit", "--reconnect", "--timeout", "--quiet", "--out"):
        assert option in out
