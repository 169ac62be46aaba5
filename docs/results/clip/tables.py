#!/usr/bin/env python3
"""Tables of `shiftkit train clip` experiments, from their summary.json files.

usage: tables.py DIR [DIR ...] [--pair A=DIR:ARM B=DIR:ARM ...]

Prints one markdown row per (experiment, arm): held-out AUROC per kind (mean over seeds), the
mean over kinds as mean +- SE over seeds, mean AP and EER; then, for each --pair, the paired
(same seed) difference of the per-seed mean held-out AUROC, mean +- SE. Arms of different
experiments pair by seed: every experiment draws the same data, head initialization and batch
order for a seed.
"""
import json
import math
import sys


def load(d):
    with open(f"{d}/summary.json") as f:
        return json.load(f)


def per_seed(s, arm, key="auroc"):
    by = {}
    for r in s["runs"]:
        if r.get("arm", r["tune"]) == arm:
            by.setdefault(r["seed"], []).append(r[key])
    return {k: sum(v) / len(v) for k, v in by.items()}


def mean_se(v):
    n = len(v)
    m = sum(v) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1)) if n > 1 else 0.0
    return m, sd / math.sqrt(n), n


def main(argv):
    dirs = [a for a in argv if "=" not in a and not a.startswith("--")]
    pairs = [a for a in argv if "=" in a]
    print("| experiment | arm (trainable share) | " + " | ".join(
        load(dirs[0])["plan"]["test_kinds"]) + " | mean AUROC | mean AP | mean EER |")
    print("| --- " * (5 + len(load(dirs[0])["plan"]["test_kinds"])) + "|")
    for d in dirs:
        s = load(d)
        kinds = s["plan"]["test_kinds"]
        for arm, t in s["tunes"].items():
            cells = [f'{t["per_kind"][k]["auroc"]["mean"]:.3f}' for k in kinds]
            m = t["mean_auroc"]
            print(f'| {d.rstrip("/").split("/")[-1]} | {arm} ({100 * t["trainable_fraction"]:.2f}%) | '
                  + " | ".join(cells)
                  + f' | {m["mean"]:.3f} +- {m["se"]:.3f} | {t["mean_ap"]["mean"]:.3f} | {t["mean_eer"]["mean"]:.3f} |')
    for p in pairs:
        a, b = p.split("=")
        (da, aa), (db, ab) = a.rsplit(":", 1), b.rsplit(":", 1)
        xa, xb = per_seed(load(da), aa), per_seed(load(db), ab)
        seeds = sorted(set(xa) & set(xb))
        m, se, n = mean_se([xa[s] - xb[s] for s in seeds])
        print(f"{da.split('/')[-1]}:{aa} - {db.split('/')[-1]}:{ab}: {m:+.4f} +- {se:.4f} (n = {n}, {m / se if se else float('inf'):.1f} SE)")


if __name__ == "__main__":
    main(sys.argv[1:])
