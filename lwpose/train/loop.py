"""The training loop, single process or one process of a torchrun/DDP run.

Run directory (written by rank 0): ``config.yaml``, ``train.csv`` (every ``log_every``
iterations: mean losses over the window and processes, learning rate, iterations/s),
``val.csv``, ``checkpoints/iter_NNNNNNN.pth``, ``latest.pth`` → the newest checkpoint, and
TensorBoard event files when tensorboard is installed.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from lwpose.errors import LwposeError
from lwpose.model import LIGHTWEIGHT_OPENPOSE, PoseNet, build, normalise
from lwpose.train import checkpoint as ckpt
from lwpose.train import distributed, validate
from lwpose.train.config import TrainConfig
from lwpose.train.dataset import CocoTrainDataset
from lwpose.train.labels import load_labels
from lwpose.train.logs import RunLog
from lwpose.train.loss import stage_losses
from lwpose.train.optim import make_optimizer, make_scheduler

log = logging.getLogger(__name__)


def train(cfg: TrainConfig) -> Path | None:
    """Train as ``cfg`` says; returns the last checkpoint's path (on rank 0, else None)."""
    procs = distributed.setup(cfg.device)
    try:
        return _train(cfg, procs)
    finally:
        distributed.teardown(procs)


def _network(cfg: TrainConfig, resume: dict | None) -> PoseNet:
    """The network, initialised from the resume checkpoint, from --init, or randomly (seeded)."""
    if resume is not None:
        arch, stages = resume["arch"], resume["num_refinement_stages"]
        if (cfg.arch or arch, cfg.num_refinement_stages) != (arch, stages):
            raise LwposeError(f"resume {cfg.resume}: the checkpoint is {arch} with {stages} refinement stage(s), "
                              f"the config asks for {cfg.arch or arch} with {cfg.num_refinement_stages}", param="resume")
    else:
        arch = cfg.arch or (ckpt.checkpoint_arch(cfg.init) if cfg.init else None) or LIGHTWEIGHT_OPENPOSE
        stages = cfg.num_refinement_stages
    torch.manual_seed(cfg.seed)
    try:
        net = build(arch, stages)
    except ValueError as exc:
        raise LwposeError(f"arch: {exc}", param="arch") from None
    if resume is not None:
        net.load_state_dict(resume["model"])
    elif cfg.init:
        ckpt.init_weights(net, cfg.init)
        folded = ckpt.folded_batchnorms(net)
        if folded and not cfg.freeze_bn:
            log.warning("--init %s: %d BatchNorm layers hold folded statistics (an imported IR); train-mode "
                        "BatchNorm changes such a network, fine-tune it with --freeze-bn", cfg.init, folded)
    return net


def _train_mode(net: torch.nn.Module, freeze_bn: bool) -> None:
    """Training mode, with the BatchNorm layers in eval mode when ``freeze_bn``."""
    net.train()
    if freeze_bn:
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()


def _check_out(out: Path, resuming: bool) -> None:
    if not resuming and (out / ckpt.LATEST).exists():
        raise LwposeError(f"out {out} already holds a run; continue it with --resume {out} or choose another --out", param="out")


def _train(cfg: TrainConfig, procs: distributed.Processes) -> Path | None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    resume = ckpt.read_resume(cfg.resume) if cfg.resume else None
    _check_out(Path(cfg.out), resume is not None)
    trainer = Trainer(cfg, procs, resume)
    try:
        return trainer.run()
    finally:
        trainer.runlog.close()


class Trainer:
    """Data, network, optimizer and logs of one process, and the loop over iterations."""

    def __init__(self, cfg: TrainConfig, procs: distributed.Processes, resume: dict | None) -> None:
        self.cfg, self.procs, self.out = cfg, procs, Path(cfg.out)
        dataset = CocoTrainDataset(load_labels(cfg.train_labels), cfg.train_images, cfg)
        self.sampler = distributed.EpochSampler(len(dataset), cfg.batch_size, procs.world_size, procs.rank, cfg.seed)
        if self.sampler.batches_per_epoch == 0:
            raise LwposeError(f"train_labels {cfg.train_labels}: its {len(dataset)} samples are fewer than one "
                              f"batch ({cfg.batch_size} x {procs.world_size} process(es)); lower --batch-size", param="train_labels")
        self.validating = bool(cfg.val_annotations) and procs.is_main and validate.check_val_set(
            cfg.val_images, cfg.val_annotations)
        self.net = _network(cfg, resume).to(procs.device)
        self.optimizer = make_optimizer(self.net, cfg.base_lr, cfg.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, cfg.lr_milestones, cfg.lr_gamma, self.sampler.batches_per_epoch)
        self.amp = cfg.amp and procs.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.iteration = 0
        if resume is not None:
            self.optimizer.load_state_dict(resume["optimizer"])
            self.scheduler.load_state_dict(resume["scheduler"])
            self.scaler.load_state_dict(resume["scaler"])
            self.iteration = int(resume["iteration"])
            ckpt.set_rng_state(resume["rng"])
        self.model = DistributedDataParallel(self.net) if procs.distributed else self.net
        distributed.prepare_workers(cfg.num_workers)
        self.loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=self.sampler, num_workers=cfg.num_workers,
                                 pin_memory=procs.device.type == "cuda", drop_last=True,
                                 persistent_workers=cfg.num_workers > 0)
        if procs.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            _write_config(self.out / "config.yaml", cfg)
            log.info("training %s (%d refinement stages) on %s x %d: %d samples, %d iterations per epoch, "
                     "iterations %d → %d", self.net.arch, self.net.num_refinement_stages, procs.device,
                     procs.world_size, len(dataset), self.sampler.batches_per_epoch, self.iteration, cfg.iterations)
        self.runlog = RunLog(self.out, procs.is_main, total=cfg.iterations, initial=self.iteration,
                             progress=cfg.progress)
        self.window = torch.zeros(2 * (self.net.num_refinement_stages + 1), device=procs.device)
        self.window_iters, self.window_start = 0, time.perf_counter()

    def run(self) -> Path | None:
        """Train up to cfg.iterations; returns the last checkpoint (rank 0) or None."""
        cfg, last = self.cfg, None
        _train_mode(self.net, cfg.freeze_bn)
        while self.iteration < cfg.iterations:
            epoch, start = divmod(self.iteration, self.sampler.batches_per_epoch)
            self.sampler.set_epoch(epoch, start)
            for batch in self.loader:
                losses = _step(self.model, batch, self.optimizer, self.scaler, self.procs.device, self.amp)
                self.scheduler.step()
                self.iteration += 1
                self.window += losses
                self.window_iters += 1
                self.runlog.step(float(losses.sum()))
                end = self.iteration == cfg.iterations
                if self.iteration % cfg.log_every == 0 or end:
                    self.log_window(epoch)
                if self.procs.is_main and (self.iteration % cfg.checkpoint_every == 0 or end):
                    last = self.save()
                if cfg.val_annotations and (self.iteration % cfg.val_every == 0 or end):
                    self.validate()
                if end:
                    break
        return last

    def log_window(self, epoch: int) -> None:
        """A train.csv row: mean losses since the last row, over all processes."""
        losses = self.procs.mean(self.window / self.window_iters).tolist()
        speed = self.window_iters / (time.perf_counter() - self.window_start)
        row: dict = {"iteration": self.iteration, "epoch": epoch, "loss": round(sum(losses), 6)}
        for stage in range(len(losses) // 2):
            row[f"stage{stage + 1}_heatmaps"] = round(losses[2 * stage], 6)
            row[f"stage{stage + 1}_pafs"] = round(losses[2 * stage + 1], 6)
        row["lr"] = self.scheduler.get_last_lr()[0]  # group 0: the backbone's first conv, lr × 1
        row["it_per_s"] = round(speed, 3)
        self.runlog.row("train", row)
        self.window.zero_()
        self.window_iters, self.window_start = 0, time.perf_counter()

    def save(self) -> Path:
        net = self.net
        path = ckpt.save_checkpoint(self.out, {
            "model": net.state_dict(), "arch": net.arch, "num_refinement_stages": net.num_refinement_stages,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "iteration": self.iteration, "config": self.cfg.to_dict()})
        self.runlog.message(f"checkpoint {path}")
        return path

    def validate(self) -> None:
        """Rank 0 validates (when lwpose.eval is there) while the other processes wait."""
        if self.validating:
            cfg = self.cfg
            metrics = validate.validate(self.net, self.procs.device, cfg.val_images, cfg.val_annotations,
                                        cfg.val_height)
            _train_mode(self.net, cfg.freeze_bn)
            if metrics is not None:
                self.runlog.row("val", {"iteration": self.iteration, **metrics})
                self.runlog.message(f"validation at {self.iteration}: AP {metrics['AP']}")
        self.procs.barrier()


def _step(model: torch.nn.Module, batch: dict, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
          device: torch.device, amp: bool) -> torch.Tensor:
    """One optimizer step; returns the detached per-stage [heatmaps, PAFs] losses."""
    images = normalise(batch["image"].to(device, non_blocking=True))
    heatmaps, pafs, mask = (batch[k].to(device, non_blocking=True) for k in ("heatmaps", "pafs", "mask"))
    with torch.autocast(device.type, enabled=amp):
        outputs = model(images)
    losses = stage_losses(outputs, heatmaps, pafs, mask)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(torch.stack(losses).sum()).backward()
    scaler.step(optimizer)
    scaler.update()
    return torch.stack([loss.detach() for loss in losses])


def _write_config(path: Path, cfg: TrainConfig) -> None:
    import yaml

    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
