#!/usr/bin/env python3
"""Draws the link-speed results (CSV from LinkSpeedBenchmark --csv) as an SVG bar chart.

Usage: scripts/plot-link-speed.py results.csv out.svg
Bars: ratio to the ceiling measured in the same run, per block size, for the engine's own
choice in each direction and both at once, and for one driver call per block. Needs only the
Python standard library.
"""
import csv
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
sizes = []
for r in rows:
    b = int(r["block_bytes"])
    if b and b not in sizes:
        sizes.append(b)
series = [("engine (auto)", "h2d", "#1f77b4", "engine H2D"),
          ("engine (auto)", "d2h", "#4fa3e0", "engine D2H"),
          ("engine (auto)", "both", "#0b3d66", "engine both at once"),
          ("PER_BLOCK baseline", "h2d", "#d62728", "one call per block, H2D"),
          ("PER_BLOCK baseline", "d2h", "#f08080", "one call per block, D2H")]
val = {(int(r["block_bytes"]), r["method"], r["direction"]): float(r["ratio"]) for r in rows}

W, H, left, top, bottom = 760, 380, 60, 30, 70
plot_h = H - top - bottom
group_w = (W - left - 20) / len(sizes)
bar_w = group_w / (len(series) + 1.5)
y = lambda v: top + plot_h * (1 - min(v, 1.1) / 1.1)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<text x="{left}" y="18" font-size="14">CudaTransferEngine: ratio to the measured link ceiling (H200, PCIe Gen5 x16)</text>']
for t in [0, 0.2, 0.4, 0.6, 0.8, 1.0]:
    out.append(f'<line x1="{left}" x2="{W-20}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{left-8}" y="{y(t)+4:.1f}" text-anchor="end">{t:.1f}</text>')
for t, label in [(0.90, "0.90 target (one direction)"), (0.85, "0.85 target (both)")]:
    out.append(f'<line x1="{left}" x2="{W-20}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#888" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{W-22}" y="{y(t)-3:.1f}" text-anchor="end" fill="#555" font-size="10">{label}</text>')
for g, b in enumerate(sizes):
    x0 = left + g * group_w + bar_w * 0.75
    for k, (m, d, color, _) in enumerate(series):
        v = val.get((b, m, d))
        if v is None:
            continue
        x = x0 + k * bar_w
        out.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w*0.9:.1f}" height="{y(0)-y(v):.1f}" fill="{color}"/>')
        out.append(f'<text x="{x+bar_w*0.45:.1f}" y="{y(v)-3:.1f}" text-anchor="middle" font-size="9">{v:.2f}</text>')
    label = f"{b >> 20} MiB" if b >= 1 << 20 else f"{b >> 10} KiB"
    out.append(f'<text x="{left + g*group_w + group_w/2:.1f}" y="{y(0)+16:.1f}" text-anchor="middle">{label} blocks</text>')
for k, (_, _, color, name) in enumerate(series):
    lx = left + (k % 3) * 220
    ly = H - 28 + (k // 3) * 16
    out.append(f'<rect x="{lx}" y="{ly-9}" width="10" height="10" fill="{color}"/><text x="{lx+14}" y="{ly}">{name}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
