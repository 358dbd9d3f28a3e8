"""The one exception type the command line turns into a clean message and a non-zero exit."""


class LwposeError(Exception):
    """A user-facing error: bad input, a missing file or model. The message names the culprit."""
