"""Plot a ``lwpose bench --json`` report and a ``benchmarks/soak.py --json`` report into one small PNG.

    python benchmarks/plot_bench.py bench.json soak.json -o docs/performance.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", type=Path, help="lwpose bench --json output")
    parser.add_argument("soak", type=Path, help="benchmarks/soak.py --json output")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/performance.png"), help="PNG to write")
    args = parser.parse_args(argv)
    bench = json.loads(args.bench.read_text())
    soak = json.loads(args.soak.read_text())

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3), dpi=90)
    runs = bench["runs"]
    kinds = [("infer_fps", "inference only"), ("e2e_fps", "end to end")]
    width = 0.8 / (len(kinds) + ("sync_fps" in bench))
    for k, (key, label) in enumerate(kinds):
        xs = [i + k * width for i in range(len(runs))]
        bars = ax1.bar(xs, [r[key] for r in runs], width, label=label)
        ax1.bar_label(bars, fmt="%.0f", fontsize=7)
    if "sync_fps" in bench:
        xs = [i + len(kinds) * width for i in range(len(runs))]
        bars = ax1.bar(xs, [bench["sync_fps"]] * len(runs), width, label="synchronous loop", color="grey")
        ax1.bar_label(bars, fmt="%.0f", fontsize=7)
    ax1.set_xticks([i + width * (len(kinds) - (0 if "sync_fps" in bench else 1)) / 2 for i in range(len(runs))],
                   [f"{r['streams']} stream{'s' if r['streams'] > 1 else ''}" for r in runs])
    ax1.set_ylabel("frames/s (all streams)")
    ax1.set_title(f"{Path(bench['source']).name}, input {bench['input_shape'][0]}x{bench['input_shape'][1]}",
                  fontsize=9)
    ax1.legend(fontsize=7, loc="lower left")

    frames, rss = zip(*soak["rss_samples_mb"])
    ax2.plot(frames, rss, marker=".")
    ax2.axhline(soak["rss_after_warmup_mb"] + soak["limit_mb"], color="red", linestyle="--", linewidth=1,
                label=f"limit (+{soak['limit_mb']:.0f} MB after warm-up)")
    ax2.set_xlabel("frames")
    ax2.set_ylabel("RSS, MB")
    ax2.set_title(f"soak: {soak['frames']} frames, {soak['streams']} streams", fontsize=9)
    ax2.set_ylim(0, max(rss) * 1.3)
    ax2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
