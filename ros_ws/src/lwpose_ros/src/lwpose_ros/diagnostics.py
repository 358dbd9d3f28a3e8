"""``/diagnostics``: one ``diagnostic_msgs/DiagnosticStatus`` per camera, published periodically.

Each camera's :class:`CameraStats` counts input frames (callbacks), drops and rejected frames,
and, as a sink, processed frames and their latency (image stamp to publication). Status WARN
when the camera is silent (no image for ``SILENT_AFTER`` s, or none yet) or when processing
falls behind (fewer than ``MIN_PROCESSED_RATIO`` of the input frames processed over the window).
"""
from __future__ import annotations

import threading
import time
from collections import deque
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
    """Counters and recent history of one camera; a sink recording each published result."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.received = self.processed = self.dropped = self.rejected = 0
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

    def on_drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def on_reject(self) -> None:
        with self._lock:
            self.rejected += 1

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
            counts = dict(received=self.received, processed=self.processed, dropped=self.dropped,
                          rejected=self.rejected)
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
