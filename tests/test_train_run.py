"""lwpose train run on coco-mini: CPU smoke run, run layout, exact resume,
weights-only init, bad inputs. Tiny crops (128 px), batch 2, one torch thread per process."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import torch

from lwpose.cli import main
from lwpose.train.labels import prepare_labels

pytestmark = [pytest.mark.slow, pytest.mark.training]  # training runs (torch); see test_train_ddp.py

ROOT = Path(__file__).resolve().parents[1]
SMOKE_ITERATIONS = 30


def rows(out: Path) -> list[dict]:
    with open(out / "train.csv") as f:
        return list(csv.DictReader(f))


def train_args(labels: Path, images: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "run", "--train-labels", str(labels), "--train-images", str(images), "--out", str(out),
            "--input-size", "128", "--batch-size", "2", "--log-every", "1", "--threads", "1", "--no-progress",
            "--num-workers", "0", *extra]


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def labels(coco_mini: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("labels") / "labels.json"
    prepare_labels(coco_mini / "person_keypoints_mini.json", out, progress=False)
    return out


@pytest.fixture(scope="module")
def smoke(labels: Path, coco_mini: Path, tmp_path_factory: pytest.TempPathFactory, one_thread) -> Path:
    """30 iterations from random weights with a DataLoader worker; checkpoints every 10."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    args = train_args(labels, coco_mini / "images", out, "--iterations", str(SMOKE_ITERATIONS),
                      "--checkpoint-every", "10", "--num-workers", "1", "--base-lr", "2e-4")
    assert main(args) == 0
    return out


def test_smoke_loss_goes_down(smoke: Path) -> None:
    losses = [float(r["loss"]) for r in rows(smoke)]
    assert len(losses) == SMOKE_ITERATIONS
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)


def test_run_layout(smoke: Path) -> None:
    names = sorted(p.name for p in (smoke / "checkpoints").iterdir())
    assert names == ["iter_0000010.pth", "iter_0000020.pth", "iter_0000030.pth"]
    assert (smoke / "latest.pth").resolve() == (smoke / "checkpoints/iter_0000030.pth").resolve()
    assert (smoke / "config.yaml").is_file()
    data = torch.load(smoke / "latest.pth", weights_only=True)
    assert {"model", "arch", "num_refinement_stages", "optimizer", "scheduler", "iteration", "rng", "config",
            "lwpose_version"} <= set(data)
    assert data["iteration"] == SMOKE_ITERATIONS and data["arch"] == "lightweight-openpose"
    assert set(rows(smoke)[0]) >= {"iteration", "loss", "stage1_heatmaps", "stage2_pafs", "lr", "it_per_s"}


def test_resume_gives_the_uninterrupted_losses(smoke: Path, tmp_path: Path, one_thread) -> None:
    out = tmp_path / "resumed"
    assert main(["train", "run", "--resume", str(smoke / "checkpoints/iter_0000020.pth"), "--out", str(out),
                 "--iterations", "22", "--num-workers", "0", "--checkpoint-every", "100"]) == 0
    resumed = rows(out)
    assert [r["iteration"] for r in resumed] == ["21", "22"]
    for r in resumed:
        assert float(r["loss"]) == pytest.approx(float(rows(smoke)[int(r["iteration"]) - 1]["loss"]), rel=1e-6)


def test_init_reports_what_does_not_match(smoke: Path) -> None:
    from lwpose.model import lightweight_openpose
    from lwpose.train.checkpoint import init_weights

    net = lightweight_openpose(num_refinement_stages=3)
    report = init_weights(net, smoke / "latest.pth")
    assert report["missing"] and all(k.startswith(("refinement_stages.1.", "refinement_stages.2."))
                                     for k in report["missing"])
    assert not report["mismatched"] and not report["unused"]
    source = torch.load(smoke / "latest.pth", weights_only=True)["model"]
    assert torch.equal(net.state_dict()["cpm.align.0.weight"], source["cpm.align.0.weight"])


def test_init_from_imagenet_mobilenet_layout(tmp_path: Path) -> None:
    """The ImageNet MobileNetV1 of step 1 stores {"state_dict": {"module.model.N...", "module.fc..."}}:
    its conv1 … conv5_5 fill the backbone, the rest is reported unused."""
    from lwpose.model import lightweight_openpose
    from lwpose.train.checkpoint import init_weights

    backbone = {f"module.{k}": torch.randn_like(v) if v.is_floating_point() else v
                for k, v in lightweight_openpose().state_dict().items() if k.startswith("model.")}
    extra = {"module.model.12.0.weight": torch.randn(512, 1, 3, 3), "module.fc.weight": torch.randn(1000, 1024)}
    torch.save({"epoch": 90, "state_dict": {**backbone, **extra}}, tmp_path / "mobilenet.pth.tar")
    net = lightweight_openpose()
    report = init_weights(net, tmp_path / "mobilenet.pth.tar")
    assert sorted(report["unused"]) == ["fc.weight", "model.12.0.weight"]
    assert all(not k.startswith("model.") for k in report["missing"])
    assert torch.equal(net.state_dict()["model.5.3.weight"], backbone["module.model.5.3.weight"])


def test_validation_is_skipped_without_lwpose_eval(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from lwpose.model import lightweight_openpose
    from lwpose.train import validate

    monkeypatch.setitem(sys.modules, "lwpose.eval", None)  # import fails
    with caplog.at_level("INFO"):
        assert validate.validate(lightweight_openpose(), torch.device("cpu"), "imgs", "ann.json", 368) is None
    assert "validation skipped: lwpose.eval is not available" in caplog.text


def test_config_precedence(tmp_path: Path) -> None:
    from lwpose.errors import LwposeError
    from lwpose.train.config import make_config

    (tmp_path / "c.yaml").write_text("train_labels: a.json\ntrain_images: imgs\nbase_lr: 4e-5\nbatch_size: 8\n")
    cfg = make_config(tmp_path / "c.yaml", base={"batch_size": 4, "iterations": 7}, batch_size=None, iterations=9)
    assert (cfg.base_lr, cfg.batch_size, cfg.iterations, cfg.input_size) == (4e-5, 8, 9, 368)
    with pytest.raises(LwposeError, match="input_size must be a multiple of 8"):
        make_config(tmp_path / "c.yaml", input_size=100)
    with pytest.raises(LwposeError, match="setting batch_size has a bad value"):
        make_config(tmp_path / "c.yaml", batch_size="many")


@pytest.mark.parametrize("case, message", [
    ("labels-not-labels", "not lwpose training labels"),
    ("batch-too-big", "fewer than one batch"),
    ("images-missing", "image folder .* does not exist"),
    ("out-taken", "already holds a run"),
    ("resume-not-training", "not a training checkpoint"),
    ("bad-config-key", "unknown keys learning_rate"),
])
def test_bad_inputs(case: str, message: str, labels: Path, coco_mini: Path, smoke: Path, tmp_path: Path,
                    capsys: pytest.CaptureFixture) -> None:
    images, out = coco_mini / "images", tmp_path / "run"
    extra: list[str] = []
    if case == "labels-not-labels":
        labels = coco_mini / "person_keypoints_mini.json"
    elif case == "batch-too-big":
        extra = ["--batch-size", "64"]
    elif case == "images-missing":
        images = tmp_path / "nowhere"
    elif case == "out-taken":
        out = smoke
    elif case == "resume-not-training":
        model = torch.load(smoke / "latest.pth", weights_only=True)["model"]
        torch.save({"state_dict": model}, tmp_path / "weights.pth")
        extra = ["--resume", str(tmp_path / "weights.pth")]
    elif case == "bad-config-key":
        (tmp_path / "c.yaml").write_text("learning_rate: 0.1\n")
        extra = ["--config", str(tmp_path / "c.yaml")]
    assert main(train_args(labels, images, out, "--iterations", "1", *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("lwpose train: error: ")
    assert __import__("re").search(message, err), err
