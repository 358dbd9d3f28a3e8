"""lwpose: real-time multi-person pose estimation on CPUs and robots."""
__version__ = "0.1.0"
