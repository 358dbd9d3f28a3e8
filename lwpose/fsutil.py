"""Safe file output: atomic replacement, no planted links followed, inputs never overwritten.

Every output file is written under a fresh name in its target directory (``tempfile.mkstemp``:
created exclusively, so a link planted at a predictable name is never followed) and then renamed
over the target with ``os.replace``: readers see the old file or the complete new one, never a
torn one, and a link at the target is replaced, not written through. On any error, or an
interrupt, the temporary file is removed and the target is untouched.
"""
from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import LwposeError


@contextmanager
def atomic_output(path: str | Path, *, flag: str | None = None) -> Iterator[Path]:
    """A temporary path in ``path``'s directory to write to; it replaces ``path`` when the block ends
    without an exception. ``flag`` (e.g. ``--json``) names the parameter in error messages."""
    path = Path(path)
    label = f"{flag} {path}" if flag else str(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(name, 0o666 & ~_umask())  # mkstemp makes it private; the output is an ordinary file
    except OSError as exc:
        raise LwposeError(f"{label}: cannot write it ({exc.strerror or exc})") from None
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise LwposeError(f"{label}: cannot write it ({exc.strerror or exc})") from None
    finally:
        with suppress(OSError):
            tmp.unlink()


def atomic_write(path: str | Path, data: str | bytes, *, flag: str | None = None) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, flag=flag) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def refuse_inputs(output: str | Path, inputs: list[str | Path], *, flag: str) -> None:
    """LwposeError when ``output`` is one of the ``inputs`` (same file, through links too)."""
    out = Path(output)
    for source in inputs:
        source = Path(source)
        same = out.resolve() == source.resolve() or (out.exists() and source.exists() and out.samefile(source))
        if same:
            raise LwposeError(f"{flag} {output} is the input {source}; choose another output")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt by :func:`sigterm_as_interrupt` (the CLI exits 143)."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (in the main thread), so cleanup code in
    ``finally`` / ``except BaseException`` runs as it does for Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: object) -> None:
        raise Terminated(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
