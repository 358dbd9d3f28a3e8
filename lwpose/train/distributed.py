"""Process setup: device, DDP process group from torchrun's environment, data order per rank,
and the DataLoader's file-descriptor needs.

``torchrun --nproc_per_node N -m lwpose.train run ...`` sets WORLD_SIZE, RANK and LOCAL_RANK;
without them the run is a single process. The backend is gloo on the CPU and nccl on CUDA.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist

from lwpose.errors import LwposeError

log = logging.getLogger(__name__)

#: Below this many open files, DataLoader workers pass tensors through files instead of
#: descriptors (the original's "received 0 items of ancdata" failure with many workers).
MIN_OPEN_FILES = 65536


@dataclass
class Processes:
    """This process's place in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of ``values`` over all processes."""
        if self.distributed:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.world_size
        return values


def setup(device: str = "auto") -> Processes:
    """Choose the device and join the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LwposeError(f"device {device}: CUDA is not available in this torch build or machine", param="device")
        dev = torch.device(f"cuda:{local}") if device == "cuda" else torch.device(device)
        torch.cuda.set_device(dev)
    elif device == "cpu":
        dev = torch.device("cpu")
    else:
        raise LwposeError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}", param="device")
    if world > 1:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        log.info("rank %d of %d joined the %s process group", rank, world, backend)
    return Processes(rank, world, local, dev)


def teardown(processes: Processes) -> None:
    if processes.distributed and dist.is_initialized():
        dist.destroy_process_group()


def prepare_workers(num_workers: int) -> None:
    """Make forked DataLoader workers safe: stop OpenCV's thread pool (a pool inherited by a
    fork hangs the worker), raise the open-file soft limit to the hard limit, and when the hard
    limit is below MIN_OPEN_FILES share worker tensors through the file system."""
    if num_workers == 0:
        return
    import resource

    import cv2

    cv2.setNumThreads(0)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = MIN_OPEN_FILES if hard == resource.RLIM_INFINITY else hard
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft < MIN_OPEN_FILES:
        torch.multiprocessing.set_sharing_strategy("file_system")
        log.info("open-file limit %d < %d: DataLoader workers share tensors through the file system",
                 soft, MIN_OPEN_FILES)


class EpochSampler:
    """(index, epoch) pairs of this rank's share of a per-epoch random permutation.

    Every epoch has ``batches_per_epoch`` full batches per rank (the remainder is dropped). The
    order depends only on (seed, epoch), and ``set_epoch(epoch, start_batch)`` starts inside an
    epoch, so a resumed run sees exactly the samples the uninterrupted run would.
    """

    def __init__(self, num_samples: int, batch_size: int, world_size: int = 1, rank: int = 0, seed: int = 0) -> None:
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.world_size = world_size
        self.rank = rank
        self.seed = seed
        self.batches_per_epoch = num_samples // (batch_size * world_size)
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.num_samples)
        used = order[:self.batches_per_epoch * self.batch_size * self.world_size]
        mine = used[self.rank::self.world_size][self.start_batch * self.batch_size:]
        return iter([(int(i), self.epoch) for i in mine])
