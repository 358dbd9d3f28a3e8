"""Remote inference over the KServe v2 protocol (OpenVINO Model Server, Triton, KServe, ``lwpose serve``).

:class:`KServeBackend` sends prepared tensors to one or more servers with ``tritonclient`` (gRPC or
REST) and hands back heatmaps and PAFs; grouping and tracking stay on the caller's host. It reads
each served model's metadata and adapts the tensor: u8 NHWC (lwpose-converted IRs, ``lwpose
serve``) is sent as is, a float NCHW input (the Open Model Zoo IR as OVMS serves it) gets
transposed and cast; normalisation is assumed to be in the graph, as in both IRs. A static served
width is padded to. Outputs are told apart by channel count (19 heatmaps, 38 PAFs).

Requests run on ``capacity`` worker threads: ``submit`` blocks (or refuses) when that many are in
flight, as the local queue does. Each request goes to the live server with the fewest requests in
flight; a server that fails is marked dead, the request is retried on another, and the dead server
gets requests again after ``probe_after`` seconds.
"""
from __future__ import annotations

import http.client
import logging
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import LwposeError
from ..preprocess import PAD_VALUE
from .base import Done, Outputs

log = logging.getLogger(__name__)

_CHANNELS = {19: "heatmaps", 38: "pafs"}
#: gRPC status codes that mean the server (not the request) is the problem
_GRPC_DOWN = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED",
              "StatusCode.ABORTED", "StatusCode.RESOURCE_EXHAUSTED", "StatusCode.UNKNOWN"}


class ServerDown(Exception):
    """A server did not answer (connection refused, timeout, 5xx)."""


@dataclass(frozen=True)
class Spec:
    """What a server's model takes and gives, from its KServe v2 metadata."""

    input: str
    datatype: str  # KServe v2 datatype of the input: UINT8, FP32, FP16
    nchw: bool  # else NHWC
    height: int  # -1 when dynamic
    width: int  # -1 when dynamic
    heatmaps: str  # output names
    pafs: str


def _dims(shape: list) -> list[int]:
    return [int(d) for d in shape]


def parse_spec(meta: dict, url: str) -> Spec:
    """The :class:`Spec` of a model-metadata reply (the JSON form both clients give)."""
    inputs, outputs = meta.get("inputs") or [], meta.get("outputs") or []
    if len(inputs) != 1:
        raise LwposeError(f"{url}: the model has {len(inputs)} inputs, not 1; not a pose model?")
    shape = _dims(inputs[0]["shape"])
    if len(shape) != 4 or 3 not in (shape[1], shape[3]):
        raise LwposeError(f"{url}: input shape {shape} is neither NCHW nor NHWC with 3 channels")
    nchw = shape[1] == 3 and shape[3] != 3
    height, width = (shape[2], shape[3]) if nchw else (shape[1], shape[2])
    names: dict[str, str] = {}
    for out in outputs:
        dims = _dims(out["shape"])
        role = _CHANNELS.get(dims[1]) if len(dims) == 4 else None
        if role is None:  # dynamic channels: go by the name
            low = out["name"].lower()
            role = "heatmaps" if "heatmap" in low else "pafs" if "paf" in low else None
        if role:
            names.setdefault(role, out["name"])
    if set(names) != {"heatmaps", "pafs"}:
        raise LwposeError(f"{url}: outputs {[o['name'] for o in outputs]} hold no 19-channel heatmaps "
                          "and 38-channel PAFs; not a Lightweight OpenPose model?")
    return Spec(inputs[0]["name"], inputs[0]["datatype"], nchw, height, width, names["heatmaps"], names["pafs"])


def _np_dtype(datatype: str) -> np.dtype:
    types = {"UINT8": np.uint8, "FP32": np.float32, "FP16": np.float16}
    if datatype not in types:
        raise LwposeError(f"input datatype {datatype} is not supported (UINT8, FP32, FP16)")
    return np.dtype(types[datatype])


class _Server:
    """One URL: its client(s), metadata, and health as seen by this process."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        parts = urlsplit(url)
        path = parts.path.strip("/").split("/")
        if parts.scheme == "grpc" and len(path) == 1 and path[0]:
            self.model = path[0]
        elif parts.scheme == "http" and len(path) == 3 and path[:2] == ["v2", "models"] and path[2]:
            self.model = path[2]
        else:
            raise LwposeError(f"server URL {url!r}: use grpc://HOST:PORT/MODEL or http://HOST:PORT/v2/models/MODEL")
        if not parts.port:
            raise LwposeError(f"server URL {url!r} has no port")
        self.grpc = parts.scheme == "grpc"
        self.address = parts.netloc
        self.spec: Spec | None = None
        self.in_flight = 0
        self.sent = 0
        self.dead_until = 0.0  # monotonic time before which requests avoid this server
        self._local = threading.local()  # the HTTP client is not thread-safe: one per thread
        self._shared: Any = None
        self._client_lock = threading.Lock()

    def client(self) -> Any:
        if self.grpc:
            with self._client_lock:
                if self._shared is None:
                    import tritonclient.grpc as grpcclient

                    self._shared = grpcclient.InferenceServerClient(self.address)
                return self._shared
        client = getattr(self._local, "client", None)
        if client is None:
            import tritonclient.http as httpclient

            client = httpclient.InferenceServerClient(self.address, connection_timeout=self.timeout,
                                                      network_timeout=self.timeout)
            self._local.client = client
        return client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A client call, with outages turned into :class:`ServerDown`."""
        from tritonclient.utils import InferenceServerException

        if self.grpc:
            kwargs["client_timeout"] = self.timeout
        try:
            return getattr(self.client(), method)(*args, **kwargs)
        except InferenceServerException as exc:
            status = str(exc.status())
            if status in _GRPC_DOWN or (status.isdigit() and int(status) >= 500) or status == "None":
                raise ServerDown(f"{self.url}: {exc.message()}") from None
            raise LwposeError(f"{self.url}: {exc.message()}") from None
        except (OSError, http.client.HTTPException) as exc:  # HTTP: refused, reset, closed, timeouts
            self._local.client = None  # a new connection next time
            raise ServerDown(f"{self.url}: {exc!r}") from None

    def fetch_spec(self) -> Spec:
        if self.spec is None:
            meta = self._call("get_model_metadata", self.model, as_json=True) if self.grpc \
                else self._call("get_model_metadata", self.model)
            self.spec = parse_spec(meta, self.url)
        return self.spec

    def infer(self, tensor: np.ndarray, stride: int) -> tuple[Outputs, int, int]:
        """Heatmaps and PAFs of a (1, H, W, 3) u8 tensor, and the bytes sent and received."""
        spec = self.fetch_spec()
        height, width = tensor.shape[1:3]
        if spec.height not in (-1, height):
            raise LwposeError(f"{self.url} serves input height {spec.height}, not {height}")
        if spec.width != -1 and spec.width != width:
            if width > spec.width:
                raise LwposeError(f"{self.url} serves input width {spec.width}; frames need {width}")
            padded = np.full((1, height, spec.width, 3), PAD_VALUE, np.uint8)
            padded[:, :, :width] = tensor
            tensor = padded
        data = tensor.transpose(0, 3, 1, 2) if spec.nchw else tensor
        data = np.ascontiguousarray(data, dtype=_np_dtype(spec.datatype))
        if self.grpc:
            import tritonclient.grpc as proto
            kw: dict[str, Any] = {}
        else:
            import tritonclient.http as proto
            kw = {"binary_data": True}
        inp = proto.InferInput(spec.input, list(data.shape), spec.datatype)
        inp.set_data_from_numpy(data, **kw)
        outputs = [proto.InferRequestedOutput(spec.heatmaps, **kw), proto.InferRequestedOutput(spec.pafs, **kw)]
        result = self._call("infer", self.model, [inp], outputs=outputs)
        cells = math.ceil(width / stride)
        heatmaps = result.as_numpy(spec.heatmaps)[0, :, :, :cells].astype(np.float32, copy=False)
        pafs = result.as_numpy(spec.pafs)[0, :, :, :cells].astype(np.float32, copy=False)
        received = result.as_numpy(spec.heatmaps).nbytes + result.as_numpy(spec.pafs).nbytes
        return (heatmaps, pafs), data.nbytes, received

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()


class KServeBackend:
    """Pose network inference on KServe v2 servers (implements :class:`lwpose.backends.Backend`).

    Args:
        urls: ``grpc://HOST:PORT/MODEL`` or ``http://HOST:PORT/v2/models/MODEL``, one or more.
        capacity: requests in flight at most (0 = 4 per server).
        timeout: seconds a request or metadata call may take before the server counts as down.
        probe_after: seconds a failed server is left alone before it gets requests again.
        stride: network stride (8 for the Lightweight OpenPose family).
    """

    def __init__(self, urls: list[str], *, capacity: int = 0, timeout: float = 10.0, probe_after: float = 5.0,
                 stride: int = 8) -> None:
        if not urls:
            raise LwposeError("server needs at least one URL", param="server")
        # lwpose forks only to exec (subprocesses) or before any gRPC call (DataLoader workers):
        # gRPC's fork handlers are not needed and can crash a later fork (grpc/grpc#29044)
        os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
        try:
            import tritonclient.grpc  # noqa: F401 - fail early with a clear message
            import tritonclient.http  # noqa: F401
        except ImportError:
            raise LwposeError("remote inference needs tritonclient: pip install 'lwpose[remote]'") from None
        self.servers = [_Server(url, timeout) for url in urls]
        self.name = "kserve:" + ",".join(urls)
        self.precision = "?"
        self.stride = stride
        self.capacity = capacity or 4 * len(self.servers)
        self.probe_after = probe_after
        self.height = 0
        #: payload bytes sent and received by finished requests (for benchmarks)
        self.bytes_sent = self.bytes_received = 0
        self._lock = threading.Lock()  # server choice and counters
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._slots = threading.Semaphore(self.capacity)
        self._pool = ThreadPoolExecutor(self.capacity, thread_name_prefix="kserve")
        self._closed = False

    # -- Backend ---------------------------------------------------------------------------
    def compile(self, height: int) -> None:
        """Read every reachable server's metadata and check it takes ``height``; servers that are
        down are marked dead (probed later); LwposeError when none is up."""
        errors = []
        for server in self.servers:
            try:
                spec = server.fetch_spec()
            except ServerDown as exc:
                self._mark_dead(server)
                errors.append(str(exc))
                continue
            if spec.height not in (-1, height):
                raise LwposeError(f"{server.url} serves input height {spec.height}, not the input height {height}")
        if len(errors) == len(self.servers):
            raise LwposeError(f"no inference server is up: {'; '.join(errors)}")
        self.height = height

    def infer(self, tensor: np.ndarray) -> Outputs:
        return self._infer_anywhere(tensor)

    def submit(self, tensor: np.ndarray, done: Done, *, block: bool = True) -> bool:
        if self._closed:
            raise RuntimeError("the backend is closed")
        if not self._slots.acquire(blocking=block):
            return False
        with self._lock:
            self._in_flight += 1
        self._pool.submit(self._run, tensor, done)
        return True

    def wait(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.wait()
        self._pool.shutdown()
        for server in self.servers:
            server.close()

    # -- requests ----------------------------------------------------------------------------
    def _run(self, tensor: np.ndarray, done: Done) -> None:
        try:
            outputs, error = self._infer_anywhere(tensor), None
        except BaseException as exc:  # noqa: BLE001 - handed to done()
            outputs, error = None, exc
        try:
            done(outputs, error)
        except BaseException:  # noqa: BLE001 - a callback must not kill the worker
            log.exception("inference callback failed")
        finally:
            self._slots.release()
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _infer_anywhere(self, tensor: np.ndarray) -> Outputs:
        """Run on the least busy live server; on an outage mark it dead and try another."""
        tried: list[_Server] = []
        errors: list[str] = []
        while True:
            server = self._choose(tried)
            if server is None:
                names = ", ".join(s.url for s in self.servers)
                detail = "; ".join(errors) or "all were marked down recently"
                raise LwposeError(f"no inference server is up ({names}): {detail}")
            tried.append(server)
            try:
                outputs, sent, received = server.infer(tensor, self.stride)
            except ServerDown as exc:
                log.warning("%s; retrying on another server", exc)
                errors.append(str(exc))
                self._mark_dead(server)
                continue
            finally:
                with self._lock:
                    server.in_flight -= 1
            with self._lock:
                server.dead_until = 0.0
                self.bytes_sent += sent
                self.bytes_received += received
            return outputs

    def _choose(self, tried: list[_Server]) -> _Server | None:
        """The live, untried server with the fewest requests in flight (then the fewest sent)."""
        now = time.monotonic()
        with self._lock:
            live = [s for s in self.servers if s not in tried and s.dead_until <= now]
            if not live:
                return None
            server = min(live, key=lambda s: (s.in_flight, s.sent))
            server.in_flight += 1
            server.sent += 1
            return server

    def _mark_dead(self, server: _Server) -> None:
        with self._lock:
            server.dead_until = time.monotonic() + self.probe_after
