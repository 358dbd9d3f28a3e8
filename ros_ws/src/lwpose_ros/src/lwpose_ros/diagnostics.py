"""``/diagnostics``: one ``diagnostic_msgs/DiagnosticStatus`` per camera, published periodically.

Each camera's :class:`CameraStats` counts input frames (callbacks) and rejected messages, adds
the frames the scheduler dropped or failed, and, as a sink, records processed frames and their
latency (image stamp to publication). Status WARN when the camera is silent (no image for
``SILENT_AFTER`` s, or none yet) or when processing falls behind (fewer than
``MIN_PROCESSED_RATIO`` of the input frames processed over the window).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import rospy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

if TYPE_CHECKING:
    from lwpose.pipeline.engine import Result

WINDOW = 5.0  # seconds of history behind rates and latency percentiles
SILENT_AFTER = 3.0  # seconds without an image before the camera counts as silent
MIN_PROCESSED_RATIO = 0.5  # processed / input frames below this is "falling behind"


class CameraStats:
    """Counters and recent history of one camera; a sink recording each published result.

    ``scheduled()`` gives the frames the scheduler dropped (a newer frame came first, or every
    request was busy) and those it could not process (refused or failed in inference)."""

    def __init__(self, topic: str, scheduled: Callable[[], tuple[int, int]]) -> None:
        self.topic = topic
        self.scheduled = scheduled
        self.received = self.processed = self.unusable = 0
        self._inputs: deque[float] = deque()
        self._outputs: deque[tuple[float, float]] = deque()  # (monotonic time, latency s)
        self._last_input: float | None = None
        self._lock = threading.Lock()

    def on_input(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.received += 1
            self._last_input = now
            self._inputs.append(now)

    def on_reject(self) -> None:
        """A message that could not be turned into a frame the model takes (warned about)."""
        with self._lock:
            self.unusable += 1

    @property
    def dropped(self) -> int:
        return self.scheduled()[0]

    @property
    def rejected(self) -> int:
        return self.unusable + self.scheduled()[1]

    def write(self, result: "Result") -> None:
        stamp = result.meta.header.stamp.to_sec()
        latency = max(0.0, time.time() - stamp) if stamp > 0 else float(result.timings.get("total", 0.0))
        with self._lock:
            self.processed += 1
            self._outputs.append((time.monotonic(), latency))

    def close(self) -> None:
        """Nothing to release."""

    def status(self, name: str, hardware_id: str, extra: dict[str, str]) -> DiagnosticStatus:
        """The camera's status now (see the module doc for the levels)."""
        now = time.monotonic()
        with self._lock:
            while self._inputs and now - self._inputs[0] > WINDOW:
                self._inputs.popleft()
            while self._outputs and now - self._outputs[0][0] > WINDOW:
                self._outputs.popleft()
            inputs, latencies = len(self._inputs), [lat for _, lat in self._outputs]
            silent_for = None if self._last_input is None else now - self._last_input
            received, processed, unusable = self.received, self.processed, self.unusable
        dropped, failed = self.scheduled()
        counts = dict(received=received, processed=processed, dropped=dropped, rejected=unusable + failed)
        input_hz, processed_hz = inputs / WINDOW, len(latencies) / WINDOW
        p50, p95 = (np.percentile(latencies, [50, 95]) * 1000) if latencies else (float("nan"),) * 2
        if silent_for is None or silent_for > SILENT_AFTER:
            level, message = DiagnosticStatus.WARN, (f"no image on {self.topic} yet" if silent_for is None else
                                                     f"no image on {self.topic} for {silent_for:.1f} s")
        elif inputs and len(latencies) < MIN_PROCESSED_RATIO * inputs:
            level, message = DiagnosticStatus.WARN, (f"falling behind: {processed_hz:.1f} of {input_hz:.1f} "
                                                     f"frames/s processed")
        else:
            level, message = DiagnosticStatus.OK, f"{processed_hz:.1f} frames/s processed"
        values = {"input rate (Hz)": f"{input_hz:.2f}", "processed rate (Hz)": f"{processed_hz:.2f}",
                  **{f"{k} frames": str(v) for k, v in counts.items()},
                  "latency p50 (ms)": f"{p50:.1f}", "latency p95 (ms)": f"{p95:.1f}", **extra}
        return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])


class DiagnosticsPublisher:
    """Publishes every camera's status on ``/diagnostics`` each ``period`` seconds."""

    def __init__(self, node_name: str, cameras: dict[str, CameraStats], extra: dict[str, str], period: float) -> None:
        self.node_name = node_name.strip("/")
        self.cameras = cameras
        self.extra = extra
        self.pub = rospy.Publisher("/diagnostics", DiagnosticArray, queue_size=5)
        self.timer = rospy.Timer(rospy.Duration(period), self._tick)

    def array(self) -> DiagnosticArray:
        msg = DiagnosticArray()
        msg.header.stamp = rospy.Time.now()
        msg.status = [stats.status(f"{self.node_name}: {stats.topic}", self.node_name, self.extra)
                      for stats in self.cameras.values()]
        return msg

    def _tick(self, _event) -> None:
        try:
            self.pub.publish(self.array())
        except rospy.ROSException:  # shutting down
            pass

    def close(self) -> None:
        self.timer.shutdown()
