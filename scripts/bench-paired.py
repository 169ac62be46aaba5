#!/usr/bin/env python3
"""Paired GEMM timings for noisy machines: for each shape, alternate `gemm/fp32/<shape>` and
`engine/<fmt>/<shape>` of the criterion bench binary (short runs), and report the median of the
per-round ratios with its spread. Shared VMs drift by up to 2x within minutes; a ratio of two
medians taken minutes apart can be off by that much, a ratio taken within one round is not.

usage: scripts/bench-paired.py BENCH_BINARY [--format sq6] [--rounds 5] [--shapes 512x512x512,...]
                               [--baseline OLD_BENCH_BINARY]
       (BENCH_BINARY: target/release/deps/gemm-<hash>, from `cargo bench --bench gemm --no-run`)
--baseline adds `engine/<fmt>/<shape>` of an older build to every round (fp32, new, old), so a
change's before/after ratios come from the same rounds.
"""
import argparse, re, statistics, subprocess, sys

SHAPES = ["512x512x512", "1795x500x48", "1795x48x500", "500x1795x48", "73728x25x16",
          "25x73728x16", "8192x400x32", "8192x32x400", "400x8192x32", "128x512x128",
          "400x768x2304", "400x768x3072", "400x3072x768", "768x400x3072", "50x64x50"]
UNIT = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}

def median_time(binary, bench_id):
    out = subprocess.run([binary, "--bench", f"^{re.escape(bench_id)}$", "--measurement-time", "1",
                          "--warm-up-time", "0.5", "--noplot"], capture_output=True, text=True).stdout
    m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", out)
    if not m:
        sys.exit(f"error: no timing for {bench_id} in the bench output (is it a gemm bench binary?)")
    return float(m.group(1)) * UNIT[m.group(2)]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary"); ap.add_argument("--format", default="sq6")
    ap.add_argument("--rounds", type=int, default=5); ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--baseline", help="an older gemm bench binary, measured in the same rounds")
    a = ap.parse_args()
    old = " | baseline | baseline x gemm/fp32 | range" if a.baseline else ""
    print(f"| m x k x n | gemm/fp32 (median of rounds) | engine/{a.format} | x gemm/fp32: median of paired ratios | range{old} |")
    print("| --- | ---: | ---: | ---: | ---" + (" | ---: | ---: | ---" if a.baseline else "") + " |")
    for shape in a.shapes.split(","):
        f, s, r, b, rb = [], [], [], [], []
        for _ in range(a.rounds):
            tf = median_time(a.binary, f"gemm/fp32/{shape}")
            ts = median_time(a.binary, f"engine/{a.format}/{shape}")
            f.append(tf); s.append(ts); r.append(tf / ts)
            if a.baseline:
                tb = median_time(a.baseline, f"engine/{a.format}/{shape}")
                b.append(tb); rb.append(tf / tb)
        line = (f"| {shape} | {statistics.median(f)*1e3:.3f} ms | {statistics.median(s)*1e3:.3f} ms | "
                f"{statistics.median(r):.2f}x | {min(r):.2f}-{max(r):.2f}x")
        if a.baseline:
            line += (f" | {statistics.median(b)*1e3:.3f} ms | {statistics.median(rb):.2f}x | "
                     f"{min(rb):.2f}-{max(rb):.2f}x")
        print(line + " |", flush=True)

main()
