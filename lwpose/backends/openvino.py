""":class:`OpenVINOBackend`: the pose network on a local OpenVINO device (CPU, GPU...).

The IR is wrapped with a PrePostProcessor so that it takes u8 NHWC BGR tensors whatever its own
input (the Open Model Zoo IR takes f32 NCHW); normalisation happens inside the graph. One model
is compiled per input height with a dynamic width (``[1, height, -1, 3]``), so every aspect ratio
shares it (and, for ``submit``, its infer queue); a few heights are cached (test-time scales),
the least recently used is dropped.
Every compile goes through :func:`lwpose.backends.precision.with_hint`.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import openvino as ov
from openvino._pyopenvino import AsyncInferQueue as _QueueBase

from .. import store
from ..errors import LwposeError
from . import precision
from .base import Done, Outputs

log = logging.getLogger(__name__)

MODES = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
#: Channels of the heatmap and PAF outputs (18 keypoints + background, 19 limbs x 2).
CHANNELS = {"heatmaps": 19, "pafs": 38}
#: Compiled heights kept at most (one per test-time scale is typical).
CACHE_SIZE = 4


class _Compiled:
    """One compiled height: the model and its infer queue (created on the first submit)."""

    def __init__(self, compiled: ov.CompiledModel) -> None:
        self.model = compiled
        self.queue: ov.AsyncInferQueue | None = None


class OpenVINOBackend:
    """A Lightweight OpenPose IR on an OpenVINO device.

    Args:
        model: a store name, a model directory or an ``.xml``.
        device: OpenVINO device name.
        mode: ``latency`` (one request at a time, all cores) or ``throughput`` (several streams).
        nireq: requests in flight at most, also the number the performance hint plans for
            (0 = one more than OpenVINO's optimal number, known after the first compile).
        threads: inference threads (0 = all cores).
        default_precision: the float precision unless ``LWPOSE_INFERENCE_PRECISION`` says otherwise
            (None: the device's default; ``convert --check`` asks for f32).
    """

    stride: int

    def __init__(self, model: str | Path = store.DEFAULT_MODEL, *, device: str = "CPU", mode: str = "latency",
                 nireq: int = 0, threads: int = 0, default_precision: str | None = None,
                 core: ov.Core | None = None) -> None:
        if mode not in MODES:
            raise LwposeError(f"mode must be one of {', '.join(MODES)}, not {mode!r}", param="mode")
        for param, value in (("nireq", nireq), ("threads", threads)):
            if value < 0:
                raise LwposeError(f"{param} must be >= 0, not {value}", param=param)
        self.path = store.resolve(model)
        self.meta = store.metadata(self.path)
        self.stride = int(self.meta.get("stride", 8))
        self.device = device
        self.name = f"openvino:{device}"
        self.precision = precision.requested() or default_precision or "?"  # the actual one once compiled
        self.config: dict[str, str] = {"PERFORMANCE_HINT": MODES[mode]}
        if nireq:
            self.config["PERFORMANCE_HINT_NUM_REQUESTS"] = str(nireq)
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = str(threads)
        if default_precision:
            self.config["INFERENCE_PRECISION_HINT"] = default_precision
        self._nireq = nireq
        self.core = core or ov.Core()
        try:
            self._model = self._with_preprocessing(self.core.read_model(self.path))
        except RuntimeError as exc:
            raise LwposeError(f"cannot read model {self.path}: {error_text(exc)}") from None
        self._outputs = self._output_positions(self._model)
        self._cache: OrderedDict[int, _Compiled] = OrderedDict()
        self._lock = threading.Lock()  # the cache
        self._start_lock = threading.Lock()  # start_async calls
        # one token per free request; a C-level queue, cheaper per frame than threading.Semaphore
        self._free: queue.SimpleQueue | None = None
        self.capacity = nireq
        self._closed = False

    # -- model ------------------------------------------------------------------------------
    def _with_preprocessing(self, model: ov.Model) -> ov.Model:
        """Make the model take u8 NHWC BGR tensors, whatever its own input is."""
        spec = self.meta["input"]
        if spec["layout"] == "NHWC" and spec["element_type"] == "u8" and spec["normalisation_in_graph"]:
            return model
        ppp = ov.preprocess.PrePostProcessor(model)
        inp = ppp.input()
        inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        inp.model().set_layout(ov.Layout(spec["layout"]))
        inp.preprocess().convert_element_type(ov.Type.f32)
        if not spec["normalisation_in_graph"]:
            inp.preprocess().mean(float(spec["mean"])).scale(float(spec["scale"]))
        return ppp.build()

    def _output_positions(self, model: ov.Model) -> tuple[int, int]:
        """Positions of the heatmap and PAF outputs named by the metadata; LwposeError unless they
        have the channel counts of CHANNELS (NCHW outputs)."""
        ports = [out.get_names() for out in model.outputs]
        positions = []
        for role, channels in CHANNELS.items():
            name = self.meta["outputs"][role]
            found = [i for i, names in enumerate(ports) if name in names]
            if not found:
                raise LwposeError(f"{self.path}: output {name!r} ({role}) not found; not a Lightweight OpenPose IR?")
            shape = model.outputs[found[0]].get_partial_shape()
            if shape.rank.is_dynamic or shape.rank.get_length() != 4 or shape[1] != channels:
                raise LwposeError(f"{self.path}: output {name!r} ({role}) has shape {shape}, not "
                                  f"[1,{channels},H,W]; not a Lightweight OpenPose IR?")
            positions.append(found[0])
        return positions[0], positions[1]

    def compiled(self, height: int, width: int = -1) -> ov.CompiledModel:
        """A model compiled for ``height`` and ``width`` (-1: dynamic). Only the dynamic-width
        model of each height is cached; a static one is compiled anew (``lwpose bench``)."""
        if width != -1:
            return self._compile(height, width)
        return self._entry(height).model

    def _compile(self, height: int, width: int) -> ov.CompiledModel:
        model = self._model.clone()
        model.reshape({model.input().get_any_name(): ov.PartialShape([1, height, width, 3])})
        try:
            compiled = self.core.compile_model(model, self.device, precision.with_hint(self.config))
        except RuntimeError as exc:
            raise LwposeError(f"cannot compile {self.path} for device {self.device!r}: "
                              f"{error_text(exc)}") from None
        self.precision = precision.actual(compiled)
        return compiled

    def _entry(self, height: int) -> _Compiled:
        key = height
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
                return entry
            entry = _Compiled(self._compile(height, -1))
            if self._free is None:
                # one request more than OpenVINO's optimal number: faster end to end (docs/performance.md)
                self.capacity = self._nireq or int(entry.model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")) + 1
                self._free = queue.SimpleQueue()
                for _ in range(self.capacity):
                    self._free.put(None)
            self._cache[key] = entry
            while len(self._cache) > CACHE_SIZE:
                _, old = self._cache.popitem(last=False)
                if old.queue is not None:
                    old.queue.wait_all()
            return entry

    # -- Backend ----------------------------------------------------------------------------
    def compile(self, height: int) -> None:
        self._entry(height)

    def infer(self, tensor: np.ndarray) -> Outputs:
        result = self._entry(tensor.shape[1]).model(tensor)
        i_hm, i_paf = self._outputs
        return np.asarray(result[i_hm])[0], np.asarray(result[i_paf])[0]

    def submit(self, tensor: np.ndarray, done: Done, *, block: bool = True) -> bool:
        if self._closed:
            raise RuntimeError("the backend is closed")
        entry = self._entry(tensor.shape[1])
        assert self._free is not None
        try:
            self._free.get(block)
        except queue.Empty:
            return False
        try:
            with self._start_lock:
                if entry.queue is None:
                    entry.queue = ov.AsyncInferQueue(entry.model, self.capacity)
                    entry.queue.set_callback(self._on_done)
                start(entry.queue, tensor, done)
        except BaseException:
            self._free.put(None)
            raise
        return True

    def _on_done(self, request: ov.InferRequest, job: tuple[np.ndarray, Done]) -> None:
        """OpenVINO callback: hand the outputs (views into the request) to ``done``; never raises."""
        done = job[1]
        try:
            try:
                i_hm, i_paf = self._outputs
                outputs = (request.get_output_tensor(i_hm).data[0], request.get_output_tensor(i_paf).data[0])
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done(None, exc)
                return
            done(outputs, None)
        except BaseException:  # noqa: BLE001 - an exception must not reach OpenVINO's thread
            log.exception("a completion callback failed")
        finally:
            assert self._free is not None
            self._free.put(None)

    def wait(self) -> None:
        with self._lock:
            queues = [e.queue for e in self._cache.values() if e.queue is not None]
        for infer_queue in queues:
            infer_queue.wait_all()
        if self._free is not None:  # every callback has returned once all requests are free again
            for _ in range(self.capacity):
                self._free.get()
            for _ in range(self.capacity):
                self._free.put(None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.wait()
        with self._lock:
            self._cache.clear()


def error_text(exc: BaseException) -> str:
    """An OpenVINO exception's message without its ``Exception from src/...`` trace lines, on one line."""
    lines = [line.strip() for line in str(exc).splitlines()]
    useful = [line for line in lines if line and not line.startswith("Exception from ")]
    return " ".join(useful) or type(exc).__name__


def start(infer_queue: ov.AsyncInferQueue, tensor: np.ndarray, userdata: object = None) -> None:
    """Start ``tensor`` on a free request of ``infer_queue`` (blocking until one is free); the
    callback gets ``(tensor, userdata)``, which keeps the array alive while the request reads it.

    The binding's own ``start_async`` with a Tensor sharing the array: the Python wrapper's input
    dispatch costs ~0.1 CPU ms per frame more (docs/performance.md). Arrays a Tensor cannot share
    (read-only or not C-contiguous) are copied first.
    """
    if not (tensor.flags.c_contiguous and tensor.flags.writeable):
        tensor = np.array(tensor, order="C")
    _QueueBase.start_async(infer_queue, ov.Tensor(tensor, shared_memory=True), (tensor, userdata))
