"""Multi-stream inference: sources, the shared asynchronous engine, sinks, and the benchmark.

The names below are imported on first use, so that ``lwpose.pipeline.defaults`` (the command
line's defaults) loads without OpenVINO.
"""
_LAZY = {"AsyncEngine": "engine", "Result": "engine", "Pipeline": "pipeline", "StreamInfo": "pipeline",
         "Sink": "sinks", "PushSource": "sources", "Source": "sources"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
