"""Multi-stream inference: sources, the shared asynchronous engine, sinks, and the benchmark."""
from .engine import AsyncEngine, Result
from .pipeline import Pipeline, StreamInfo

__all__ = ["AsyncEngine", "Pipeline", "Result", "StreamInfo"]
