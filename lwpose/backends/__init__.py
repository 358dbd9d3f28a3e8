"""Network runners behind one interface (:class:`Backend`)."""
from .base import Backend, Done, Outputs

__all__ = ["Backend", "Done", "Outputs"]
