"""``LWPOSE_INFERENCE_PRECISION``: one switch for the floating-point precision of every OpenVINO
compile in lwpose (runtime, pipeline, eval, ``convert --check``, the ROS node).

Unset means OpenVINO's default for the CPU (bf16 on CPUs with AVX512-BF16 or AMX, else f32), so
results can differ between machines; set ``f32`` to get the same numerics everywhere.
"""
from __future__ import annotations

import os
from typing import Any

from ..errors import LwposeError

ENV = "LWPOSE_INFERENCE_PRECISION"
CHOICES = ("f32", "bf16", "f16")


def requested() -> str | None:
    """The precision asked for in the environment, or None when unset or empty."""
    value = os.environ.get(ENV, "").strip().lower()
    if not value:
        return None
    if value not in CHOICES:
        raise LwposeError(f"{ENV} must be one of {', '.join(CHOICES)} or unset, not {value!r}")
    return value


def with_hint(config: dict[str, str]) -> dict[str, str]:
    """``config`` plus ``INFERENCE_PRECISION_HINT`` when the environment asks for a precision."""
    value = requested()
    return {**config, "INFERENCE_PRECISION_HINT": value} if value else dict(config)


def actual(compiled: Any) -> str:
    """The precision a compiled OpenVINO model really runs its float layers in (``f32``, ``bf16``…)."""
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except RuntimeError:  # devices without the property
        return "?"
    return (value.to_string() if hasattr(value, "to_string") else str(value)).lower()  # ov.Type: "bf16"
