"""Run the benchmark suite and print a table; write the figures as JSON.

::

    python -m benchmarks.run                      # standalone container, ~6 minutes (scale: ~2.5)
    python -m benchmarks.run --quick              # the same, smaller (< 60 s)
    python -m benchmarks.run --ensemble           # 3-node ensemble, clients on a follower
    python -m benchmarks.run --no-fsync           # standalone, forceSync=no: the disk's share
    python -m benchmarks.run --hosts 127.0.0.1:2181 --json out.json

Without ``--hosts`` ZooKeeper is started through ``zklock.testing`` (its image is
``ZKLOCK_ZOOKEEPER_IMAGE``, or ``--image``), set up as a deployment runs it (see
``benchmarks/server.py``; ``--via-proxy`` and ``--test-jvm`` undo that), and removed at the
end.  ``--only`` picks suites: ``uncontended``, ``requests``, ``contended``, ``scale``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from . import impls as implementations
from . import suites
from .pool import ROOT, Pool
from .report import render
from .server import warm_up, zookeeper

SUITES = ("uncontended", "requests", "contended", "scale")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller run (< 60 s)")
    parser.add_argument("--hosts", help="use this ZooKeeper (host:port,...) instead of a container")
    parser.add_argument("--ensemble", action="store_true",
                        help="start a 3-node ensemble and connect through a follower")
    parser.add_argument("--image", help="ZooKeeper image (default: the zklock.testing setting)")
    parser.add_argument("--no-fsync", action="store_true",
                        help="standalone server with forceSync=no: what the disk costs")
    parser.add_argument("--test-jvm", action="store_true",
                        help="run the server on the test harness's small C1-only JVM instead "
                        "of a deployment's JVM")
    parser.add_argument("--via-proxy", action="store_true",
                        help="connect through the published port (docker-proxy) even where the "
                        "container's own address is reachable")
    parser.add_argument("--json", type=Path, help="write the results here "
                        "(default: benchmarks/results/<time>-<target>.json)")
    parser.add_argument("--only", action="append", choices=SUITES, help="run only these suites")
    parser.add_argument("--repeats", type=int, help="repeats of each interleaved round")
    parser.add_argument("--scale-repeats", type=int, help="repeats of the scale suite, a fresh "
                        "process per implementation each (default 3; --quick: 1)")
    parser.add_argument("--contenders", help="comma-separated process counts for the contended "
                        "suite (default: 2,4,8,16; --quick: 2,8)")
    parser.add_argument("--hold", type=float, help="seconds each timed contended section is "
                        "held (default 0; the untimed warm-up round holds each "
                        f"{suites.EXCLUSION_HOLD * 1000:g} ms, for the exclusion check)")
    parser.add_argument("--impls", help="comma-separated implementations for the latency "
                        f"suites (default: {','.join(implementations.UNCONTENDED)})")
    return parser


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        settings: dict[str, Any] = {
            "repeats": 8, "cycles": 60, "warmup": 50, "count_cycles": 100,
            "contenders": [2, 8], "contended_repeats": 3, "duration": 0.5, "hold": 0.0,
            "locks": 1000, "waiters": 100, "waiter_sessions": 2, "scale_repeats": 1,
        }
    else:
        # Many short repeats: a load change on the machine then hits every implementation of
        # a repeat alike, and the median of per-repeat ratios stays steady.
        settings = {
            "repeats": 30, "cycles": 100, "warmup": 100, "count_cycles": 300,
            "contenders": [2, 4, 8, 16], "contended_repeats": 8, "duration": 0.6, "hold": 0.0,
            "locks": 10_000, "waiters": 1000, "waiter_sessions": 4, "scale_repeats": 3,
        }
    if args.repeats:
        settings["repeats"] = settings["contended_repeats"] = args.repeats
    if args.scale_repeats is not None:
        if args.scale_repeats < 1:
            raise SystemExit(f"--scale-repeats must be at least 1, not {args.scale_repeats}")
        settings["scale_repeats"] = args.scale_repeats
    if args.contenders:
        settings["contenders"] = [int(n) for n in args.contenders.split(",")]
    if args.hold is not None:
        if not args.hold >= 0:
            raise SystemExit(f"--hold must be a number of seconds >= 0, not {args.hold}")
        settings["hold"] = args.hold
    return settings


def _versions() -> dict[str, str]:
    found = {}
    for package in ("zklock", "kazoo", "tooz"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    return found


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    chosen = args.only or list(SUITES)
    latency_impls = (args.impls.split(",") if args.impls else list(implementations.UNCONTENDED))
    contended_impls = [i for i in latency_impls if not i.startswith("raw")]
    # kazoo+lean is in the latency suites' default set; the scale suite takes it only when
    # --impls names it (its default stays zklock, zklock+lean, kazoo: a fresh 10,000-lock
    # process each is the suite's longest part).
    scale_impls = [i for i in latency_impls
                   if i in implementations.SCALE or (args.impls and i == "kazoo+lean")]
    for impl in latency_impls:
        if impl not in implementations.ALL:
            raise SystemExit(f"unknown implementation {impl!r}")
    if implementations.REFERENCE not in latency_impls:
        raise SystemExit("the reference implementation 'kazoo' must be in --impls")

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    started = time.monotonic()
    load_before = os.getloadavg()
    run_id = uuid.uuid4().hex[:8]
    base = f"{implementations.BENCH_ROOT}/{run_id}"
    results: dict[str, Any] = {}
    if args.no_fsync and (args.hosts or args.ensemble):
        raise SystemExit("--no-fsync starts its own standalone server: not with --hosts or --ensemble")
    with zookeeper(args.hosts, args.ensemble, args.image, force_sync=not args.no_fsync,
                   via_proxy=args.via_proxy, test_jvm=args.test_jvm) as target:
        progress(f"ZooKeeper: {target.detail} at {target.hosts}")
        if target.kind != "external":
            warm_up(target.hosts)
            progress("server warmed up")
        size = max(len(latency_impls), max(settings["contenders"]) if "contended" in chosen else 0)
        with Pool(size) as pool:
            if "uncontended" in chosen:
                results["uncontended"] = suites.uncontended(
                    pool, target.hosts, base, latency_impls, settings["repeats"],
                    settings["cycles"], settings["warmup"], progress)
            if "requests" in chosen:
                results["requests"] = suites.requests_per_cycle(
                    pool, target.hosts, base, latency_impls, settings["count_cycles"])
                progress("requests per cycle counted")
            if "contended" in chosen:
                results["contended"] = suites.contended(
                    pool, target.hosts, base, contended_impls, settings["contenders"],
                    settings["contended_repeats"], settings["duration"], settings["hold"],
                    progress)
        if "scale" in chosen:
            results["scale"] = suites.scale(
                target.hosts, base, scale_impls, settings["locks"], settings["waiters"],
                settings["waiter_sessions"], settings["scale_repeats"], progress)
        try:  # an external server keeps nothing; the figures are kept whatever happens here
            implementations.remove_znodes(target.hosts, base)
        except Exception as error:
            print(f"could not remove {base} and its tooz locks: {error!r}", file=sys.stderr)
        document = {
            "meta": {
                "command": "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None
                                                                  else argv),
                "target": target.kind,
                "target_detail": target.detail,
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "versions": _versions(),
                "settings": settings,
                "elapsed_s": round(time.monotonic() - started, 1),
                # Other work on the machine shows here (1, 5, 15 min load averages).
                "loadavg_before": [round(x, 2) for x in load_before],
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            },
            **results,
        }
    print(render(document))
    broken = exclusion_failures(results)
    for line in broken:
        print(f"MUTUAL EXCLUSION FAILED: {line}", file=sys.stderr)
    unfinished = scale_failures(results)
    for line in unfinished:
        print(f"SCALE RUN INCOMPLETE: {line}", file=sys.stderr)
    out = args.json
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = ROOT / "benchmarks" / "results" / f"{stamp}-{target.kind}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"\nJSON written to {out}", file=sys.stderr)
    return 1 if broken or unfinished else 0


def exclusion_failures(results: dict[str, Any]) -> list[str]:
    """What the contended rounds saw of two holders at once: adjacent sections that overlap,
    entries that found the shared occupancy counter taken, or tokens out of order; in the
    timed rounds and in the untimed ones (warm-up, counting)."""
    found = []
    checks = ("overlaps", "occupancy_overlaps", "token_inversions")
    contended = results.get("contended", {})
    for n, data in contended.get("by_n", {}).items():
        for what in checks:
            for impl, count in data.get(what, {}).items():
                if count:
                    found.append(f"N={n} {impl}: {count} {what.replace('_', ' ')}")
    for impl, data in contended.get("untimed", {}).items():
        for what in checks:
            if data.get(what):
                found.append(f"untimed rounds {impl}: {data[what]} {what.replace('_', ' ')}")
    return found


def scale_failures(results: dict[str, Any]) -> list[str]:
    """What the scale suite did not do in full: a held lock whose node a sample did not find,
    a chain that did not queue, watch or hand over to every waiter, or raised."""
    found = []
    scale = results.get("scale", {})
    for impl, data in scale.get("hold", {}).items():
        if not data.get("sampled_nodes_ok"):
            found.append(f"hold {impl}: a sampled lock path did not have its one node")
    for impl, data in scale.get("waiters", {}).items():
        waiters = data.get("waiters", 0)
        for what in ("queued", "watching_at_start", "completed"):
            if data.get(what, 0) < waiters:
                found.append(f"waiters {impl}: {what.replace('_', ' ')} {data.get(what)} of {waiters}")
        if data.get("errors"):
            found.append(f"waiters {impl}: {len(data['errors'])} errors, the first: {data['errors'][0]}")
    return found


if __name__ == "__main__":
    sys.exit(main())
