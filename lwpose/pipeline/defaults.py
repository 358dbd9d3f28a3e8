"""The pipeline's defaults that the command line shows too (no heavy imports)."""

#: Seconds a network stream may take to open, and to deliver each frame, before it counts as
#: stalled (FFmpeg's open and read timeouts), so a lost stream is noticed rather than waited on.
NETWORK_TIMEOUT = 5.0
#: Reopenings of a live source in a row without a frame before it is given up (``reconnect``).
#: With the network timeout (5 s to open, 5 s for a frame) and waits of 1, 2, 4 s between
#: attempts, a stalled network stream fails within 4 x 10 + 7 = 47 s.
DEFAULT_RECONNECT = 3
#: Longest wait between two reconnection attempts, seconds.
MAX_BACKOFF = 8.0
