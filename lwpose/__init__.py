"""lwpose: real-time multi-person pose estimation on CPUs and robots.

``lwpose.PoseModel`` (one frame → people) and ``lwpose.Pipeline`` (many streams on one async
queue) are imported lazily, so ``import lwpose`` stays light.
"""
__version__ = "0.1.0"

_LAZY = {"PoseModel": "lwpose.runtime", "Pipeline": "lwpose.pipeline", "Person": "lwpose.pose"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lwpose' has no attribute {name!r}")
