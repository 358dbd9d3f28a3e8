"""Run logs of the main process: train.csv / val.csv, TensorBoard events when the
``tensorboard`` package is installed, and a progress bar (loss, iterations/s, ETA)."""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class RunLog:
    """Writes nothing unless ``enabled`` (rank 0); CSV files are appended to when resuming."""

    def __init__(self, out: Path, enabled: bool, *, total: int, initial: int, progress: bool) -> None:
        self.out = out
        self.enabled = enabled
        self.tensorboard = None
        self.bar = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.debug("tensorboard is not installed: no event files")
        else:
            self.tensorboard = SummaryWriter(str(out))
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc="train", unit="it", dynamic_ncols=True)

    def row(self, name: str, values: dict[str, Any]) -> None:
        """Append ``values`` to ``name``.csv (header on a new file) and to the event file."""
        if not self.enabled:
            return
        path = self.out / f"{name}.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(values))
            if new:
                writer.writeheader()
            writer.writerow(values)
        if self.tensorboard is not None:
            step = values["iteration"]
            for key, value in values.items():
                if key != "iteration" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"{name}/{key}", value, step)

    def step(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def message(self, text: str) -> None:
        """A log line that does not break the progress bar."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            log.info(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
