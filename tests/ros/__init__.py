"""Helpers of the ROS tests (tests/test_ros*.py)."""
