"""catkin_python_setup() entry: installs the lwpose_ros Python package (the node's logic)."""
from catkin_pkg.python_setup import generate_distutils_setup
from setuptools import setup

setup(**generate_distutils_setup(packages=["lwpose_ros"], package_dir={"": "src"}))
