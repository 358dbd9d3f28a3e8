"""``lwpose bench``: one short run with real inference; checks the report's names and consistency."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lwpose.cli import main


@pytest.mark.slow
@pytest.mark.numerics
def test_bench_reports_named_figures(ir_path: Path, video_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    rc = main(["bench", "--model", str(ir_path), "--source", str(video_path), "--frames", "16",
               "--streams", "1", "2", "--baseline-sync", "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["frame_size"] == [768, 576] and report["input_shape"] == [256, 344]
    assert report["inference_precision"] in ("f32", "bf16", "f16")
    assert report["decode_ms_mean"] > 0 and report["sync_fps"] > 0 and report["infer_static_fps"] > 0
    assert report["decode_cpu_ms_per_frame"] > 0 and report["cpu_model"] and report["inference_precision"]
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p95"]
    assert [r["streams"] for r in report["runs"]] == [1, 2]
    for run in report["runs"]:
        assert run["frames_total"] == 16 * run["streams"]
        assert run["infer_fps"] > 0 and run["e2e_fps"] > 0
        assert run["ratio_e2e_to_infer"] == round(run["e2e_fps"] / run["infer_fps"], 3)
        assert run["decode_infer_fps"] > 0
        assert run["ratio_e2e_to_decode_infer"] == round(run["e2e_fps"] / run["decode_infer_fps"], 3)
        assert run["ratio_e2e_to_sync"] == round(run["e2e_fps"] / report["sync_fps"], 3)
        assert set(run["stages"]) == {"prepare", "queue", "infer", "group", "track", "total"}
        assert all(s["p95_ms"] >= 0 for s in run["stages"].values())
        assert run["people_per_frame"] >= 2  # measured 2.8-3.4 on the clip under bf16, f32 and f16
    table = capsys.readouterr().out
    assert "e2e/infer" in table and f"wrote {out}" in table


def test_bench_missing_source_is_an_error(ir_path: Path, tmp_path: Path, capsys) -> None:
    assert main(["bench", "--model", str(ir_path), "--source", str(tmp_path / "none.avi")]) == 2
    assert "--source" in capsys.readouterr().err
