"""ROS1 front end of lwpose: the pose node, message conversions and a video publisher (docs/ros.md)."""
