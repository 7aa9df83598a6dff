"""Faults, load and soak of the real `teamocr run`, in one table.

    python benchmarks/reliability.py [--short] [--only chaos,stop,disk,unmount,load,soak] [--out DIR]

The scenarios live once, in ``tests/faults/scenarios.py`` and ``tests/load/scenarios.py``, each
with a short size (what CI runs on every push) and a long one (marker ``long``, deselected by
default). This script runs the long ones (``--short``: the CI ones, a smoke test of this script)
through pytest with
``RELIABILITY_FIGURES`` naming a JSON file, where each test leaves its figures, then prints them
as one table with each test's outcome.

Long sizes: chaos 1,000 drops (250 distinct) with a worker SIGKILLed every 4 s and one Redis
restart; stop mid-burst of 200 files; a full data disk with 100 files; 60 files around an unmount;
load of 50 API + 20 Socket.IO clients for 60 s beside one user's flood at 200 requests/s; a
10-minute soak at 1 file/s. About 20 minutes on 2 cores. The disk and unmount scenarios need root
(mount); without it they say skipped and why.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = {  # name -> (pytest -k expression, title)
    "chaos": ("chaos", "chaos"),
    "stop": ("stopped_mid_burst", "stop mid-burst"),
    "disk": ("full_data_disk", "disk full"),
    "unmount": ("unmounted", "unmount"),
    "load": ("under_load", "load"),
    "soak": ("soak", "soak"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the CI sizes (minutes), not the long ones")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / f"reliability-{int(time.time())}")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    size = "short" if args.short else "long"
    args.out.mkdir(parents=True, exist_ok=True)
    figures_path, junit = args.out / "figures.json", args.out / "junit.xml"
    figures_path.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-s",
        "-p",
        "no:cacheprovider",
        "tests/faults",
        "tests/load",
        "-m",
        "long" if size == "long" else "not long",
        "--timeout",
        "3600",
        "-k",
        " or ".join(f"({SCENARIOS[name][0]} and {size})" for name in chosen),
        f"--junitxml={junit}",
    ]
    env = {**os.environ, "RELIABILITY_FIGURES": str(figures_path)}
    start = time.monotonic()
    code = subprocess.call(command, cwd=REPO, env=env)
    figures = json.loads(figures_path.read_text("utf-8")) if figures_path.exists() else {}
    outcomes = read_outcomes(junit)
    print(
        f"\nteamocr reliability ({size} sizes), {time.monotonic() - start:.0f} s, "
        f"{os.cpu_count()} CPUs; figures in {figures_path}\n"
    )
    print(table(chosen, size, figures, outcomes))
    return code


def read_outcomes(junit: Path) -> dict[str, str]:
    """pytest's outcome per test name: passed, failed, skipped."""
    if not junit.exists():
        return {}
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        out[case.get("name", "")] = (
            "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
        )
    return out


def flood_text(f: dict[str, Any]) -> str:
    flood = f.get("flood") or {}
    if not flood:
        return ""
    sent = flood.get("200", 0) + flood.get("429", 0)
    return (
        f", while one more user flooded ({sent / flood.get('seconds', f['seconds']):.0f} requests/s, asking up to "
        f"{f['flood_rate']:g}): {flood.get('200', 0)} answered, {flood.get('429', 0)} refused with 429 "
        f"({flood.get('retry_after', 0)} with Retry-After)"
    )


def table(chosen: list[str], size: str, figures: dict[str, Any], outcomes: dict[str, str]) -> str:
    rows = ["| scenario | outcome | figures |", "|---|---|---|"]
    for name in chosen:
        key, title = SCENARIOS[name]
        outcome = next((v for k, v in outcomes.items() if key in k and f"[{size}]" in k), "not run")
        fig = figures.get(f"{title} ({size})")
        rows.append(f"| {title} | {outcome} | {describe(name, fig) if fig else 'no figures (see the pytest output)'} |")
    return "\n".join(rows)


def rss(start: dict[str, float], end: dict[str, float]) -> str:
    return ", ".join(f"{k} {start[k]:.1f} -> {end.get(k, 0):.1f} MiB" for k in start)


def describe(name: str, f: dict[str, Any]) -> str:
    if "skipped" in f:
        return f"skipped: {f['skipped']}"
    if name == "chaos":
        return (
            f"{f['drops']} drops ({f['distinct']} distinct contents, some written slowly), {f['sigkills']} worker "
            f"SIGKILLs, {f['redis_restarts']} Redis restart: {f['done']} done + {f['duplicates']} duplicates "
            f"stored, {f['failed']} failed, {f['stuck']} stuck; Socket.IO client: {f['final_events']} final "
            f"events for {f['stored']} results, {f['missing_events']} missing, {f['repeated_final']} repeated "
            f"({f['retaken']} jobs taken over from killed workers); {f['seconds']} s"
        )
    if name == "stop":
        return (
            f"a burst of {f['files'] - 3} files, SIGTERM after {f['done_at_stop']} done (exit {f['exit_code']}), "
            f"3 more dropped while stopped: {f['done']} done, {f['failed']} failed after the start; "
            f'log: "{f["log"]}"'
        )
    if name == "disk":
        return (
            f"{f['files']} files with the data disk full, then space freed: {f['done']} done, {f['failed']} "
            f'failed, service up, /healthz {f["healthz_while_full"]} while full; log: "{f["log"]}"'
        )
    if name == "unmount":
        return (
            f"{f['files']} files before, during (on the server) and after: {f['done']} done, {f['failed']} "
            f"failed, the share away {f.get('away_seconds', '?')} s, {f.get('waited_for_share', 0)} queued files "
            f'waited for it; log: "{f["log_gone"]}"'
        )
    if name == "load":
        kinds = ", ".join(f"{k} {v}" for k, v in f["p99_ms_by_kind"].items())
        return (
            f"{f['api_clients']} API + {f['socket_clients']} Socket.IO clients, {f['seconds']} s, {f['drops']} "
            f"drops: {f['requests']} requests, {f['errors']} errors, p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms "
            f"(target 200; p99 by kind: {kinds}){flood_text(f)}; {f['socket_events']} events received, "
            f"{f['missing_events']} missing, {f['repeated_final']} repeated, {f['differing_clients']} clients "
            f"differing from their team"
        )
    if name == "soak":
        return (
            f"{f['seconds']} s at 1 file/s, {f['drops']} drops, {f['failed']} failed: RSS "
            f"{rss(f['rss_start_mib'], f['rss_end_mib'])} (run and worker: max growth {f['max_growth_pct']}%; "
            f"redis: {f['redis_bytes_per_file']} bytes per file, its duplicate-check state)"
        )
    return json.dumps(f)


if __name__ == "__main__":
    sys.exit(main())
