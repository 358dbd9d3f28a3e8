"""ROS node latency and rate: N cameras publishing a video at R Hz each into one pose node.

Starts a private roscore and ``multi_camera.launch`` (one model, one async queue for all
cameras), publishes ``vtest.avi`` frames on ``cam_i/image`` stamped with the wall time of
publication, and measures on ``/pose_estimator/cam_i/persons`` the processed rate per camera and
the latency from image stamp to receiving the answer (the publish time plus local transport).
Prints (or writes with --out) a JSON object.

    .venv/bin/python benchmarks/ros_latency.py --cameras 2 --rate 15 --seconds 30
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WS = ROOT / "ros_ws"
sys.path.insert(0, str(WS / "devel" / "lib" / "python3" / "dist-packages"))
SHARED = Path(os.environ.get("LWPOSE_SHARED", ROOT.parent / "shared"))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(SHARED / "models/human-pose-estimation-0001/FP16-INT8/"
                                                   "human-pose-estimation-0001.xml"),
                   help="store name or .xml (default: the shared IR)")
    p.add_argument("--video", default=str(SHARED / "media/vtest.avi"), help="video to publish (default: vtest.avi)")
    p.add_argument("--cameras", type=int, default=2, help="number of cameras (default 2)")
    p.add_argument("--rate", type=float, default=15.0, help="frames per second per camera (default 15)")
    p.add_argument("--seconds", type=float, default=30.0, help="measured duration (default 30)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds published before measuring (default 5)")
    p.add_argument("--height", type=int, default=256, help="network input height (default 256)")
    p.add_argument("--mode", default="latency", choices=("latency", "throughput"),
                   help="OpenVINO performance hint (default latency, as multi_camera.launch)")
    p.add_argument("--nireq", type=int, default=0, help="infer requests (default 0: OpenVINO's choice)")
    p.add_argument("--out", type=Path, help="write the JSON here too")
    return p.parse_args()


def percentile_ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def main() -> int:
    args = parse_args()
    import cv2
    import rospy
    from lwpose_msgs.msg import PersonArray
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from lwpose_ros import harness
    from lwpose_ros.convert import bgr_to_image

    cap = cv2.VideoCapture(args.video)
    frames = []
    while len(frames) < 100 and (frame := cap.read()[1]) is not None:
        frames.append(frame)
    cap.release()
    if not frames:
        sys.exit(f"cannot read {args.video}")
    names = [f"cam_{i}" for i in range(args.cameras)]
    logs = Path(tempfile.mkdtemp(prefix="lwpose-ros-bench-"))
    port = harness.free_port()
    env = harness.workspace_env(WS, port, logs, pythonpath=(str(ROOT),))
    core = harness.Roscore(port, env, logs / "roscore.log")
    launch = harness.roslaunch("lwpose_ros", "multi_camera.launch",
                               {"cameras": "[" + ", ".join(names) + "]", "model": args.model, "height": args.height,
                                "mode": args.mode, "nireq": args.nireq}, env, logs / "node.log")
    os.environ.update({k: env[k] for k in ("ROS_MASTER_URI", "ROS_HOSTNAME", "ROS_HOME", "ROS_LOG_DIR")})
    try:
        rospy.init_node("ros_latency_bench", disable_signals=True)
        window = {"start": float("inf"), "end": float("inf")}
        published = {n: [] for n in names}  # stamps inside the window
        received = {n: [] for n in names}  # (stamp, latency, people)

        def on_persons(name: str, msg: PersonArray) -> None:
            now, stamp = time.time(), msg.header.stamp.to_sec()
            if window["start"] <= stamp < window["end"]:
                received[name].append((stamp, now - stamp, len(msg.persons)))

        subs = [rospy.Subscriber(f"/pose_estimator/{n}/persons", PersonArray, lambda m, n=n: on_persons(n, m),
                                 queue_size=50) for n in names]
        pubs = {n: rospy.Publisher(f"/{n}/image", Image, queue_size=1) for n in names}
        templates = [bgr_to_image(f, Header(frame_id="cam")) for f in frames]
        deadline = time.monotonic() + 120
        while not all(s.get_num_connections() and p.get_num_connections() for s, p in zip(subs, pubs.values())):
            if not launch.running() or time.monotonic() > deadline:
                sys.exit(f"the node did not come up; see {logs / 'node.log'}")
            time.sleep(0.1)
        stop = threading.Event()

        def publish(name: str, offset: float) -> None:
            period, i = 1.0 / args.rate, 0
            t_next = time.monotonic() + offset
            while not stop.is_set():
                time.sleep(max(0.0, t_next - time.monotonic()))
                t = templates[i % len(templates)]
                msg = Image(header=Header(stamp=rospy.Time.from_sec(time.time()), frame_id=name), height=t.height,
                            width=t.width, encoding=t.encoding, step=t.step, data=t.data)
                pubs[name].publish(msg)
                stamp = msg.header.stamp.to_sec()
                if window["start"] <= stamp < window["end"]:
                    published[name].append(stamp)
                i += 1
                t_next += period

        threads = [threading.Thread(target=publish, args=(n, k / args.rate / len(names)), daemon=True)
                   for k, n in enumerate(names)]
        for t in threads:
            t.start()
        time.sleep(args.warmup)
        window["start"] = time.time()
        window["end"] = window["start"] + args.seconds
        time.sleep(args.seconds + 2.0)  # and let the last answers arrive
        stop.set()
        for t in threads:
            t.join()
    finally:
        rospy.signal_shutdown("done")
        launch.stop()
        core.stop()

    per_camera = {}
    for n in names:
        lat = [r[1] for r in received[n]]
        per_camera[n] = {
            "published": len(published[n]),
            "processed": len(received[n]),
            "published_hz": round(len(published[n]) / args.seconds, 2),
            "processed_hz": round(len(received[n]) / args.seconds, 2),
            "latency_ms_p50": percentile_ms(lat, 50),
            "latency_ms_p95": percentile_ms(lat, 95),
            "people_mean": round(float(np.mean([r[2] for r in received[n]])), 2) if received[n] else None,
        }
    all_lat = [r[1] for n in names for r in received[n]]
    result = {
        "benchmark": "ros_latency",
        "cameras": args.cameras,
        "rate_hz_per_camera": args.rate,
        "seconds": args.seconds,
        "model": args.model,
        "height": args.height,
        "mode": args.mode,
        "nireq": args.nireq,
        "cpus": os.cpu_count(),
        "processed_hz_per_camera_mean": round(float(np.mean([c["processed_hz"] for c in per_camera.values()])), 2),
        "latency_ms_p50": percentile_ms(all_lat, 50),
        "latency_ms_p95": percentile_ms(all_lat, 95),
        "per_camera": per_camera,
        "node_log": str(logs / "node.log"),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
