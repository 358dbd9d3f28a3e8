"""The one exception type the command line turns into a clean message and a non-zero exit."""
from __future__ import annotations


class LwposeError(Exception):
    """A user-facing error: bad input, a missing file or model. The message names the culprit.

    ``param`` names the library parameter at fault (``height``, ``annotations``...) when there is
    one; the message then starts with that name, and the CLI rewords it as the matching flag.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

    def worded(self, flag: str) -> str:
        """The message with its leading parameter name replaced by ``flag`` (e.g. ``--height``)."""
        text = str(self)
        if self.param and text.startswith(self.param):
            return flag + text[len(self.param):]
        return text
