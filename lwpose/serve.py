"""``lwpose serve``: a pose model behind KServe's own Python model server (KServe v2 over gRPC and REST).

:class:`PoseServing` is a ``kserve.Model``: one model compiled with a dynamic input width
(``[1, height, -1, 3]`` u8 BGR, as the local engine) and one ``openvino.AsyncInferQueue``; each
request's tensor is started on a free infer request and awaited without blocking the event loop.
Outputs are ``heatmaps`` (1, 19, H/8, W/8) and ``pafs`` (1, 38, H/8, W/8), float32. The same class
is the custom predictor a KServe InferenceService runs (deploy/).

KServe binds REST to 0.0.0.0 and gRPC to [::] and has no option for it; :func:`serve` starts the
same kserve REST and gRPC servers itself so that they listen on ``host`` (default 127.0.0.1).
"""
from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import numpy as np
import openvino as ov

from .backends import precision
from .errors import LwposeError
from .backends.base import Done
from .backends.openvino import OpenVINOBackend, start

log = logging.getLogger(__name__)


def _import_kserve():
    """Import kserve, which parses ``sys.argv`` at import time: keep lwpose's own flags from it."""
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        import kserve
        import kserve.model_server
    except ImportError:
        raise LwposeError("lwpose serve needs kserve: pip install 'lwpose[serve]'") from None
    finally:
        sys.argv = argv
    return kserve


kserve = _import_kserve()
import kserve.protocol.grpc.server  # noqa: E402
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse  # noqa: E402


class PoseServing(kserve.Model):
    """A pose network served as a KServe model named ``name``.

    Args:
        name: served model name.
        backend: the local network (its requests in flight bound the server's).
        height: input height the served model accepts (any width, a multiple of the stride).
        native: serve the IR as it is, its own input and outputs (FP32 [1, 3, 256, 456] for the Open
            Model Zoo IR), as OpenVINO Model Server does; for testing clients against that form.
    """

    def __init__(self, name: str, backend: OpenVINOBackend, height: int, native: bool = False) -> None:
        super().__init__(name)
        self.backend = backend
        self.height = height
        self.native = native
        self._compiled: ov.CompiledModel | None = None
        self._queue: ov.AsyncInferQueue | None = None
        self._free: asyncio.Semaphore | None = None

    def load(self) -> bool:
        backend = self.backend
        backend.compile(self.height)  # also sets capacity
        if self.native:  # the raw IR, as OVMS would serve it: no PrePostProcessor, its own queue
            self._compiled = backend.core.compile_model(str(backend.path), backend.device,
                                                        precision.with_hint(backend.config))
            self._queue = ov.AsyncInferQueue(self._compiled, max(1, backend.capacity))
            self._queue.set_callback(self._on_native_done)
            inference = precision.actual(self._compiled)
        else:
            inference = backend.precision
        log.info("%s: %s, height %d, %d requests in flight, %s inference", self.name, backend.path,
                 self.height, backend.capacity, inference)
        self.ready = True
        return True

    def get_input_types(self) -> list[dict]:
        if self.native:
            return [_port_type(port) for port in self._compiled.inputs]
        return [{"name": "image", "datatype": "UINT8", "shape": [1, self.height, -1, 3]}]

    def get_output_types(self) -> list[dict]:
        if self.native:
            return [_port_type(port) for port in self._compiled.outputs]
        cells = self.height // self.backend.stride
        return [{"name": "heatmaps", "datatype": "FP32", "shape": [1, 19, cells, -1]},
                {"name": "pafs", "datatype": "FP32", "shape": [1, 38, cells, -1]}]

    @staticmethod
    def _resolver(loop: asyncio.AbstractEventLoop, future: asyncio.Future):
        """A completion callback that copies the outputs and wakes the awaiting request handler."""
        def done(outputs, error) -> None:
            value = error if error is not None else tuple(np.copy(o) for o in outputs)

            def settle() -> None:
                if not future.done():
                    future.set_exception(value) if error is not None else future.set_result(value)
            loop.call_soon_threadsafe(settle)
        return done

    def _on_native_done(self, request: ov.InferRequest, job: tuple[np.ndarray, Done]) -> None:
        job[1](tuple(request.get_output_tensor(i).data for i in range(len(self._compiled.outputs))), None)

    def _tensor(self, payload: InferRequest) -> np.ndarray:
        if len(payload.inputs) != 1:
            raise kserve.errors.InvalidInput(f"expected 1 input, got {len(payload.inputs)}")
        tensor = payload.inputs[0].as_numpy()
        if self.native:
            return np.ascontiguousarray(tensor)  # OpenVINO checks it
        height, stride = self.height, self.backend.stride
        if tensor.dtype != np.uint8 or tensor.ndim != 4 or tensor.shape[0] != 1 or tensor.shape[1] != height \
                or tensor.shape[3] != 3 or tensor.shape[2] % stride or tensor.shape[2] == 0:
            raise kserve.errors.InvalidInput(
                f"input must be UINT8 [1, {height}, W, 3] with W a multiple of {stride}, "
                f"not {tensor.dtype} {list(tensor.shape)}")
        return np.ascontiguousarray(tensor)

    async def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        tensor = self._tensor(payload)
        if self._free is None:  # created here: it belongs to the server's event loop
            self._free = asyncio.Semaphore(max(1, self.backend.capacity))
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        done = self._resolver(loop, future)
        async with self._free:  # a blocking submit would stall the event loop while every request is busy
            if self.native:
                start(self._queue, tensor, done)
            else:
                self.backend.submit(tensor, done)
            outputs = await future
        if self.native:
            names = [port.get_any_name() for port in self._compiled.outputs]
        else:
            names = ["heatmaps", "pafs"]
            outputs = tuple(o[None] for o in outputs)  # the batch dimension back
        response = []
        for name, data in zip(names, outputs):
            out = InferOutput(name, list(data.shape), "FP32")
            out.set_data_from_numpy(data, binary_data=True)
            response.append(out)
        return InferResponse(payload.id, self.name, response, from_grpc=payload.from_grpc,
                             use_binary_outputs=True, requested_outputs=payload.request_outputs)

    def stop(self) -> None:
        if self._queue is not None:
            self._queue.wait_all()
        self.backend.close()
        super().stop()


def _port_type(port: ov.Output) -> dict:
    """KServe v2 metadata of an OpenVINO port (dynamic dimensions as -1)."""
    datatypes = {ov.Type.f32: "FP32", ov.Type.f16: "FP16", ov.Type.u8: "UINT8"}
    shape = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
    return {"name": port.get_any_name(), "datatype": datatypes[port.get_element_type()], "shape": shape}


def served_name(model: str | Path) -> str:
    """The default served name: the store name, else the model directory's or .xml's name."""
    path = Path(model)
    if path.suffix == ".xml":
        return path.stem if path.stem != "model" else path.parent.name
    return path.name


def serve(model: str | Path, *, name: str | None = None, height: int = 256, host: str = "127.0.0.1",
          grpc_port: int, http_port: int, device: str = "CPU", nireq: int = 0, native: bool = False) -> None:
    """Serve ``model`` until SIGINT or SIGTERM (requests in flight finish first)."""
    backend = OpenVINOBackend(model, device=device, mode="throughput", nireq=nireq)
    serving = PoseServing(name or served_name(model), backend, height, native)
    serving.load()
    server = _ModelServer(host, http_port=http_port, grpc_port=grpc_port)
    server.start([serving])


class _ModelServer(kserve.ModelServer):
    """kserve's ModelServer, listening on ``host`` rather than on every interface."""

    def __init__(self, host: str, **kwargs) -> None:
        super().__init__(**kwargs, grace_period=10)
        self.host = host

    def start(self, models: list) -> None:
        from kserve.model_server import FASTAPI_APP_IMPORT_STRING
        from kserve.protocol.rest.server import RESTServer

        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = RESTServer(FASTAPI_APP_IMPORT_STRING, self.dataplane, self.model_repository_extension,
                                       self.http_port, grace_period=self.grace_period)
        self._rest_server.config.host = self.host
        self._grpc_server = _GRPCServer(self.host, self.grpc_port, self.dataplane, self.model_repository_extension,
                                        kwargs=vars(kserve.model_server.args), grace_period=self.grace_period)
        self.servers = [self._rest_server.start(), self._grpc_server.start(self.max_threads)]
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())


class _GRPCServer(kserve.protocol.grpc.server.GRPCServer):
    """kserve's gRPC server on ``host``: its start() binds [::], so it is done again here."""

    def __init__(self, host: str, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._host = host

    async def start(self, max_workers: int) -> None:
        from concurrent import futures

        from grpc import aio
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
        from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
        from kserve.protocol.grpc.servicer import InferenceServicer

        options = [(f"grpc.{key}", self._kwargs[f"grpc_{key}"])
                   for key in ("max_send_message_length", "max_receive_message_length")]
        self._server = aio.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                                  interceptors=(LoggingInterceptor(), ExceptionToStatusInterceptor()), options=options)
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(self._data_plane, self._model_repository_extension), self._server)
        address = f"[{self._host}]:{self._port}" if ":" in self._host else f"{self._host}:{self._port}"
        if not self._server.add_insecure_port(address):
            raise LwposeError(f"--grpc-port {self._port}: cannot listen on {address}")
        log.info("gRPC on %s", address)
        await self._server.start()
        await self._server.wait_for_termination()
