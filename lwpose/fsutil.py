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


class AtomicFile:
    """A new file for ``path``, written under a fresh hidden name in its directory (keeping
    ``path``'s suffix, which some writers read the format from): :meth:`commit` renames it over
    ``path``, :meth:`discard` removes it and leaves ``path`` untouched. ``flag`` (e.g. ``--json``)
    names the parameter in error messages."""

    def __init__(self, path: str | Path, *, flag: str | None = None) -> None:
        self.path = Path(path)
        self.label = f"{flag} {self.path}" if flag else str(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=f".tmp{self.path.suffix}",
                                        dir=self.path.parent)
            os.close(fd)
            os.chmod(name, 0o666 & ~_umask())  # mkstemp makes it private; the output is an ordinary file
        except OSError as exc:
            raise self.error(exc) from None
        #: where to write
        self.tmp = Path(name)

    def error(self, exc: OSError) -> LwposeError:
        """The one-line error for a failure writing this file."""
        return LwposeError(f"{self.label}: cannot write it ({exc.strerror or exc})")

    def commit(self) -> None:
        """Make the written file ``path`` (synced first); on failure it is discarded, LwposeError."""
        try:
            with open(self.tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise self.error(exc) from None

    def discard(self) -> None:
        """Remove the written file; ``path`` stays as it was."""
        with suppress(OSError):
            self.tmp.unlink()


@contextmanager
def atomic_output(path: str | Path, *, flag: str | None = None) -> Iterator[Path]:
    """A temporary path in ``path``'s directory to write to; it replaces ``path`` when the block ends
    without an exception (:class:`AtomicFile`)."""
    out = AtomicFile(path, flag=flag)
    try:
        yield out.tmp
    except OSError as exc:
        out.discard()
        raise out.error(exc) from None
    except BaseException:
        out.discard()
        raise
    out.commit()


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
