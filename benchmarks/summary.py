"""Print a Markdown summary of benchmarks/results/*.json, or write it into benchmarks/README.md.

Usage: python benchmarks/summary.py [--write]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- summary:begin -->", "<!-- summary:end -->"


def _machine(meta: dict) -> str:
    load = meta.get("load_average")
    load_s = f", load {load[0]:.2f}" if load else ""
    cpu = f"{meta.get('cpu_model', '?')}, {meta.get('cpu_count')} cores"
    return f"{meta.get('device', 'cpu')} / {cpu}{load_s}"


def summarise() -> str:
    rows = [
        "| benchmark | setting | auperf | baseline | ratio | machine |",
        "|---|---|---:|---:|---:|---|",
    ]
    for path in sorted((HERE / "results").glob("*.json")):
        d = json.loads(path.read_text())
        meta = d.get("metadata", {})
        kind = d.get("benchmark")
        if kind == "warp" and "cpu" in d:
            t = d["cpu"]["timings"]
            for suffix, label in (("", "fresh output"), ("_reused_out", "reused output")):
                base = t[f"baseline_cv2_numpy_1thread{suffix}"]["median_s"] * 1e3
                for threads in ("1thread", "2threads"):
                    ours = t[f"auperf_{threads}{suffix}"]["median_s"] * 1e3
                    rows.append(
                        f"| warp ({d['faces']} faces 1080p -> 224 float32 NCHW) | {label}, "
                        f"{threads} vs cv2+NumPy 1 thread | {ours:.1f} ms | {base:.1f} ms | "
                        f"{base / ours:.2f}x | {_machine(meta)} |"
                    )
        elif kind == "warp" and "gpu" in d:
            g = d["gpu"]
            rows.append(
                f"| warp GPU | bytes/s vs device copy | {g['achieved_bytes_per_s'] / 1e9:.0f} GB/s "
                f"| {g['copy_bytes_per_s'] / 1e9:.0f} GB/s | {g['fraction_of_copy_bandwidth']:.2f} "
                f"| {_machine(meta)} |"
            )
        elif kind == "fuse":
            base = d["cpu"]["numpy"]["median_s"] * 1e3
            for name in ("auperf_1thread", "auperf_2thread"):
                ours = d["cpu"][name]["median_s"] * 1e3
                rows.append(
                    f"| fuse ({d['faces']} x {d['views']} x {d['aus']}) | {name[7:]} vs NumPy | "
                    f"{ours:.2f} ms | {base:.2f} ms | {base / ours:.2f}x | {_machine(meta)} |"
                )
        elif kind == "detect":
            base = d["baseline_per_face"]["faces_per_s"]
            for r in d["detector"]:
                if "error" in r:
                    continue
                rows.append(
                    f"| detect ({d['model']}) | {r['provider']}, batch {r['batch']} vs per-face "
                    f"loop | {r['faces_per_s']:.0f} faces/s | {base:.0f} faces/s | "
                    f"{r['speedup_vs_baseline']:.2f}x | {_machine(meta)} |"
                )
        elif kind == "synth_render":
            ours = d["renderer_clean"]["faces_per_s"]
            base = d["naive_baseline"]["faces_per_s"]
            aug = d["renderer_realistic_augment"]["faces_per_s"]
            rows.append(
                f"| render 256x256, 1 core | augment off (realistic augment: {aug:.0f} faces/s) "
                f"vs naive drawing | {ours:.0f} faces/s | {base:.0f} faces/s | {ours / base:.1f}x "
                f"| {_machine(meta)} |"
            )
        elif kind == "video":
            fps = d["frames_per_second"]
            h, w = d["params"]["size"][1], d["params"]["size"][0]
            for name, label in (
                ("pipeline_rendered_fe", "given landmarks"),
                ("pipeline_mediapipe", "MediaPipe front end"),
            ):
                if name in fps:
                    rows.append(
                        f"| video {w}x{h} H.264 end to end | {label} vs PyAV decode alone | "
                        f"{fps[name]:.1f} frames/s | {fps['decode_av']:.1f} frames/s | "
                        f"{fps[name] / fps['decode_av']:.2f}x | {_machine(meta)} |"
                    )
        elif kind == "fit_step":
            for setting, r in d["cpu_1thread"].items():
                ours = r["auperf"]["per_step_median_s"] * 1e6
                base = r["numpy"]["per_step_median_s"] * 1e6
                rows.append(
                    f"| adam_step ({setting}, D={d['dim']}) | 1 thread vs NumPy | {ours:.1f} us "
                    f"| {base:.1f} us | {base / ours:.1f}x | {_machine(meta)} |"
                )
        elif kind == "ray_scaling":
            c = d["configs"]
            rows.append(
                f"| Ray Data ({d['total_frames']} frames) | 2 vs 1 workers | "
                f"{c['ray_2']['frames_per_s']:.1f} frames/s | {c['ray_1']['frames_per_s']:.1f} "
                f"frames/s | {d['speedup_2_vs_1_workers_wall']:.2f}x | {_machine(meta)} |"
            )
        elif kind == "serve_load":
            by = {r["batching"]: r for r in d["results"]}
            if True in by and False in by:
                on, off = by[True], by[False]
                rows.append(
                    f"| Ray Serve /detect | dynamic batching on vs off (p99 "
                    f"{on['latency_ms']['p99']:.0f} vs {off['latency_ms']['p99']:.0f} ms) | "
                    f"{on['requests_per_s']:.1f} req/s | {off['requests_per_s']:.1f} req/s | "
                    f"{on['requests_per_s'] / off['requests_per_s']:.2f}x | {_machine(meta)} |"
                )
    return "\n".join(rows)


def main() -> int:
    table = summarise()
    if "--write" in sys.argv[1:]:
        readme = HERE / "README.md"
        text = readme.read_text()
        start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
        readme.write_text(text[:start] + "\n" + table + "\n" + text[stop:])
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
