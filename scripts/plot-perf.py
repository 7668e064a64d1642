#!/usr/bin/env python3
"""Draws the scaling plots of docs/perf/ (issue #16) from the benches' JSON results.

Reads docs/perf/data/*.json, written by the benches (`npm run bench -- scaling`, `-- commit`,
`-- e2e`), and writes one PNG per relation to docs/perf/. Only measured points are drawn: a file
that is missing or comes from a quick run (`"quick": true`) is skipped, and so is its plot.

A documentation tool run by hand, not a dependency of the project or of CI. It needs python3 and
matplotlib; on Debian: `apt-get install python3-matplotlib` (if another python3 comes first in
PATH, run it as `/usr/bin/python3 scripts/plot-perf.py`).

Usage: python3 scripts/plot-perf.py [data dir] [output dir]
"""

import json
import sys
from pathlib import Path

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter
except ImportError:
    sys.exit(
        "plot-perf.py needs matplotlib: apt-get install python3-matplotlib "
        "(then /usr/bin/python3 scripts/plot-perf.py) or pip install matplotlib"
    )

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "perf" / "data"
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "perf"
KIB = 1024
MIB = 1024 * 1024


def load(name):
    path = DATA / f"{name}.json"
    if not path.exists():
        print(f"skipped: no {path}")
        return None
    result = json.loads(path.read_text())
    if result.get("quick"):
        print(f"skipped: {path} is from a quick run (its figures mean nothing)")
        return None
    return result


def loads(values):
    """The 1-minute load averages of `values` (lists of 1/5/15-minute averages) as a range."""
    ones = [v[0] for v in values if v]
    if not ones:
        return "load ?"
    lo, hi = f"{min(ones):.1f}", f"{max(ones):.1f}"
    return f"load {lo}" if lo == hi else f"load {lo}–{hi}"


def title(ax, what, result, load_values):
    m = result.get("machine", {})
    machine = f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, Node {m.get('node', '?')}"
    ax.set_title(
        f"{what}\n{machine} — {result.get('date', '?')[:10]}, {loads(load_values)} (1-min avg)",
        fontsize=10,
    )


def save(fig, name, *sources):
    files = ", ".join(f"docs/perf/data/{s}.json" for s in sources)
    fig.text(0.99, 0.005, f"data: {files}", ha="right", va="bottom", fontsize=7, color="grey")
    fig.tight_layout()
    path = OUT / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def log2_axis(ax, values):
    ax.set_xscale("log", base=2)
    ax.set_xticks(values)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def commit_time():
    r = load("commit")
    if r is None:
        return
    s = r["series"]
    members = [p["members"] for p in s]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label, style in [
        ("dsMs", "DS whole handling", "o-"),
        ("memberMs", "a member processing it", "s--"),
        ("validateMs", "DS validation alone", "^:"),
        ("decodeMs", "DS state decode", "v:"),
    ]:
        ax.plot(members, [p[key] for p in s], style, label=label)
    log2_axis(ax, members)
    ax.set_yscale("log")
    ax.set_xlabel("group members")
    ax.set_ylabel("time per commit, ms (median)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    title(ax, "DS commit cost vs group size (full-path self-update)", r, [p.get("load") for p in s])
    save(fig, "commit-time", "commit")


def qs_replicas():
    r = load("e2e-throughput")
    if r is None:
        return
    s = r["series"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    labels = [f"{p['qsReplicas']} QS" for p in s]
    bars = ax.bar(labels, [p["deliveriesPerSecond"] for p in s], color="tab:blue", label="end to end")
    ax.bar_label(bars, fmt="%.0f")
    raw = s[0]["rawDeliveriesPerSecond"]
    ax.axhline(raw, color="tab:red", linestyle="--", label=f"raw pipeline, same run ({raw:.0f}/s)")
    for bar, p in zip(bars, s):
        ax.annotate(
            f"{p['deliveriesPerSecond'] / p['rawDeliveriesPerSecond'] * 100:.1f} % of raw",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 14),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_yscale("log")
    ax.set_ylim(bottom=1, top=raw * 30)
    ax.set_ylabel("recipient deliveries per second")
    ax.set_xlabel("QS replicas")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(loc="upper left")
    title(ax, "P1 end-to-end throughput vs QS replicas", r, [p.get("load") for p in s])
    save(fig, "qs-replicas", "e2e-throughput")


def memory():
    r = load("scaling-memory")
    if r is None:
        return
    pts = r["points"]
    x = [p["groups"] for p in pts]
    fig, (rss, heap) = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    for service, style in [
        ("delivery", "o-"),
        ("queue", "s-"),
        ("auth", "^--"),
        ("edge-gateway", "v--"),
        ("federation-gateway", "x:"),
    ]:
        rss.plot(x, [p["processes"][service]["rssBytes"] / MIB for p in pts], style, label=service)
        h = [p["processes"][service]["heapUsedBytes"] for p in pts]
        if all(v is not None for v in h):
            heap.plot(x, [v / MIB for v in h], style, label=service)
    for ax, what in [(rss, "resident set size (RSS), MiB"), (heap, "V8 heap used (least of 3 samples), MiB")]:
        ax.set_xlabel("groups (2 members, 1 message each) = clients (1 queue each)")
        ax.set_ylabel(what)
        ax.set_xticks(x)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    rss.legend()
    title(rss, "Service memory vs groups and queues handled", r, [p.get("load") for p in pts])
    heap.set_title("heap used: V8 collects when it likes (no forced GC)", fontsize=10)
    save(fig, "memory", "scaling-memory")


def slope(xs, ys):
    """Least-squares slope of ys over xs: the growth per unit."""
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else float("nan")


def line(ax, xs, ys_bytes, style, label, unit, **kw):
    """Plots bytes as KiB, the label saying the fitted bytes per `unit`."""
    ax.plot(xs, [y / KIB for y in ys_bytes], style, label=f"{label}: ≈ {slope(xs, ys_bytes):,.0f} B per {unit}", **kw)


def sum_prefix(delta, prefix, field):
    return sum(v[field] for k, v in delta.items() if k.startswith(prefix))


def storage_per_client(r):
    pts = r["clients"]
    x = [p["clients"] for p in pts]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for prefix, label, color in [("auth.", "AS database", "tab:green"), ("queue.", "QS database", "tab:blue")]:
        rows = [sum_prefix(p["delta"], prefix, "rowBytes") for p in pts]
        disk = [sum_prefix(p["delta"], prefix, "totalBytes") for p in pts]
        line(ax, x, rows, "o-", f"{label}, row bytes", "client", color=color)
        line(ax, x, disk, "s--", f"{label}, on disk", "client", color=color)
    ax.set_xlabel("clients registered")
    ax.set_ylabel("growth of the database, KiB")
    ax.set_xticks(x)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    title(ax, "Storage per registered client (user, client, key packages, queue)", r, [p.get("load") for p in pts])
    save(fig, "storage-per-client", "scaling-storage")


def storage_per_member(r):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    pts = r["groups"]
    x = [p["members"] for p in pts]
    ax.plot(x, [p["stateBytes"] / KIB for p in pts], "o-", label="stored DS state (scaling bench, e2e deployment)")
    ax.plot(
        x,
        [p["delta"].get("delivery.public.groups", {}).get("totalBytes", 0) / KIB for p in pts],
        "x:",
        label="DS groups table on disk after the members joined (dead row versions included)",
    )
    ticks = list(x)
    sources = ["scaling-storage"]
    commit = load("commit")
    if commit is not None:
        s = commit["series"]
        cx = [p["members"] for p in s]
        ax.plot(cx, [p["stateKiB"]["stored"] for p in s], "s--", label="stored DS state (commit bench)")
        ax.plot(cx, [p["stateKiB"]["plain"] for p in s], "^--", label="DS state before padding (commit bench)")
        ticks = sorted(set(ticks + cx))
        sources.append("commit")
    log2_axis(ax, ticks)
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("group members")
    ax.set_ylabel("KiB per group")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    title(ax, "DS storage per group vs members (state padded to size buckets)", r, [p.get("load") for p in pts])
    save(fig, "storage-per-member", *sources)


def storage_per_message(r):
    m = r["messages"]
    pts = m["points"]
    x = [p["deliveries"] for p in pts]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    q = "queue.public.qs_messages"
    line(ax, x, [p["delta"].get(q, {}).get("rowBytes", 0) for p in pts], "o-", "qs_messages row bytes", "message")
    line(ax, x, [p["delta"].get(q, {}).get("totalBytes", 0) for p in pts], "s--", "qs_messages on disk (heap, TOAST, indexes)", "message")
    line(ax, x, [sum_prefix(p["delta"], "queue.", "totalBytes") for p in pts], "x:", "whole QS database on disk", "message")
    line(ax, x, [sum_prefix(p["delta"], "delivery.", "totalBytes") for p in pts], "^:", "whole DS database on disk", "message")
    ax.set_xlabel(f"queue messages stored ({m['textBytes']} B texts × {m['groupMembers'] - 1} recipients, never fetched)")
    ax.set_ylabel("growth, KiB")
    ax.set_xticks(x)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    title(ax, "Storage per queued message", r, [p.get("load") for p in pts])
    save(fig, "storage-per-message", "scaling-storage")


def storage():
    r = load("scaling-storage")
    if r is None:
        return
    storage_per_client(r)
    storage_per_member(r)
    storage_per_message(r)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    commit_time()
    qs_replicas()
    memory()
    storage()
