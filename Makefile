# lwpose developer workflow. `make demo` and `make test` work on a fresh clone, with or without
# ../shared beside it (docs/testing.md).
SHELL := /bin/bash
# VENV=DIR uses an existing virtual environment (with lwpose's dependencies) instead of .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
# The repository's own code, whichever venv runs it.
LWPOSE := $(PY) -m lwpose
SHARED ?= $(abspath ../shared)
MODEL := human-pose-estimation-0001
# Where `make setup` takes the model from: a directory laid out like the official download;
# default ../shared/models when present, else the official URL.
LWPOSE_MODEL_MIRROR ?= $(if $(wildcard $(SHARED)/models),$(SHARED)/models)
MIRROR := $(if $(LWPOSE_MODEL_MIRROR),--mirror $(LWPOSE_MODEL_MIRROR))
STAMP := $(VENV)/.lwpose-setup
EXT_STAMP := build/.grouping-built
ROS_STAMP := ros_ws/devel/.lwpose-built
ROS_DEBS := ros-core-dev catkin python3-rospy python3-roslaunch python3-rostest python3-message-filters \
	ros-message-generation ros-message-runtime ros-std-msgs ros-sensor-msgs ros-geometry-msgs \
	ros-visualization-msgs rosbash rviz xvfb python3-tf2-ros python3-dynamic-reconfigure ros-diagnostic-msgs python3-diagnostic-msgs
PYTEST_ARGS ?=

.PHONY: setup model ros-deps ros demo test test-fast bench clean help

help:
	@echo "make demo       set up, then run pose estimation on samples/sample.mp4"
	@echo "make test       set up, then run the whole test suite"
	@echo "make test-fast  the suite without tests marked slow (conversion, training, roscore, long videos)"
	@echo "make bench  run the benchmarks (writes benchmarks/results/*.json)"
	@echo "make ros    build the catkin workspace ros_ws/"

setup: $(STAMP) $(EXT_STAMP) model

$(STAMP): pyproject.toml setup.py
	$(MAKE) ros-deps
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e ".[train,convert,eval,remote,serve,dev]"
	touch $@

# The Cython extensions (grouping, tracking), built in this checkout (also when VENV is another checkout's venv).
$(EXT_STAMP): $(STAMP) cython_ext/grouping.pyx cython_ext/tracking.pyx
	$(PY) setup.py -q build_ext --inplace
	mkdir -p build && touch $@

# Installs the model into the store ($$LWPOSE_HOME, default ~/.cache/lwpose) unless it is there.
model: $(STAMP)
	$(LWPOSE) models fetch $(MODEL) $(MIRROR)

# Debian's ROS1 packages: installed when run as root, otherwise the command is printed.
ros-deps:
	@missing=$$(for p in $(ROS_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "ROS packages missing; install them with: sudo apt-get install -y $$missing"; \
	fi

ros: $(ROS_STAMP)

# The venv's python (Debian's, with system site packages) runs the node: it sees catkin_pkg and openvino.
$(ROS_STAMP): $(STAMP) $(shell find ros_ws/src -type f -not -path '*/__pycache__/*' 2>/dev/null)
	cd ros_ws && catkin_make -DPYTHON_EXECUTABLE=$(abspath $(PY)) > /tmp/lwpose-catkin.log 2>&1 || { tail -30 /tmp/lwpose-catkin.log; exit 1; }
	touch $@

demo: setup
	$(LWPOSE) run samples/sample.mp4 --save-video --out runs/demo

# pytest exits 5 when it collected no tests: a failure like any other non-zero status.
# The training tests (marker training) run in a pytest process of their own (tests/test_train_ddp.py says why).
test: setup ros
	$(PY) -m pytest -q -m "not training" $(PYTEST_ARGS)
	$(PY) -m pytest -q -m training

test-fast: setup ros
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: setup
	mkdir -p benchmarks/results
	$(PY) benchmarks/decode_bench.py --json benchmarks/results/decode.json
	$(LWPOSE) bench --streams 1 4 --frames 300 --repeats 2 --baseline-sync --json benchmarks/results/bench.json
	$(LWPOSE) bench --streams 1 4 --frames 300 --repeats 2 --height 160 --json benchmarks/results/bench-160.json
	$(PY) benchmarks/soak.py --json benchmarks/results/soak.json

clean:
	rm -rf build runs lwpose/decode/*.so lwpose/*.so cython_ext/*.c ros_ws/build ros_ws/devel
