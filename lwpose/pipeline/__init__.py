"""Multi-stream inference: sources, the shared asynchronous engine, sinks, and the benchmark."""
from .engine import AsyncEngine, Result
from .pipeline import Pipeline, StreamInfo
from .sinks import Sink
from .sources import PushSource, Source

__all__ = ["AsyncEngine", "Pipeline", "PushSource", "Result", "Sink", "Source", "StreamInfo"]
