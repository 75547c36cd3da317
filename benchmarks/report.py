"""The printed table of a benchmark run (the JSON holds every figure behind it)."""

from __future__ import annotations

from typing import Any, Optional


def _num(value: Optional[float], digits: int = 0) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:,.{digits}f}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in
                     enumerate(zip(headers, widths)))
    body = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                      enumerate(zip(row, widths))) for row in rows]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def render(document: dict[str, Any]) -> str:
    """The whole report as text."""
    meta = document["meta"]
    parts = [f"zklock benchmark — {meta['target_detail']}; {meta['cpus']} CPUs, Python "
             f"{meta['python']}, kazoo {meta['versions']['kazoo']}, tooz {meta['versions']['tooz']}"
             f"; {meta['elapsed_s']} s; load average {meta['loadavg_before'][0]} -> "
             f"{meta['loadavg_after'][0]}", f"command: {meta['command']}"]
    unc = document.get("uncontended")
    req = document.get("requests", {}).get("per_impl", {})
    if unc:
        parts.append(
            f"\nUncontended acquire+release ({unc['repeats']} interleaved repeats x "
            f"{unc['cycles_per_repeat']} cycles; p50 and CPU: medians over repeats and medians "
            "of per-repeat ratios to kazoo; p99: over all cycles)")
        rows = []
        for impl, med in unc["median"].items():
            counts = req.get(impl, {})
            rows.append([
                impl, _num(med["p50_us"]), _num(med["p99_us"]), _num(med["cpu_s_per_1000"], 3),
                _num(unc["ratio"]["p50_us"][impl], 2), _num(unc["ratio"]["p99_us"][impl], 2),
                _num(unc["ratio"]["cpu_s_per_1000"][impl], 2),
                _num(counts.get("server_per_cycle"), 2), _num(counts.get("client_per_cycle"), 2),
            ])
        parts.append(_table(["impl", "p50 us", "p99 us", "CPU s/1000", "p50 x", "p99 x",
                             "CPU x", "req/cycle srv", "req/cycle cli"], rows))
    elif req:
        rows = [[impl, _num(c.get("server_per_cycle"), 2), _num(c.get("client_per_cycle"), 2)]
                for impl, c in req.items()]
        parts.append("\nRequests per uncontended cycle")
        parts.append(_table(["impl", "server", "client"], rows))
    if req:
        parts.append("requests by type per cycle (client): " + "; ".join(
            f"{impl}: " + ", ".join(f"{k} {v:g}" for k, v in c.get("client_by_type", {}).items())
            for impl, c in req.items()))
    con = document.get("contended")
    if con:
        parts.append(
            f"\nContended: N processes, own sessions, {con['duration_s']} s per round, hold "
            f"{con['hold_s']} s, {con['repeats']} interleaved repeats")
        rows = []
        for n, data in con["by_n"].items():
            for impl, med in data["median"].items():
                share = med.get("handoff_share")
                rows.append([
                    f"N={n} {impl}", _num(med["throughput_per_s"]),
                    _num(data["ratio"]["throughput_per_s"][impl], 2),
                    _num(None if share is None else share * 100),
                    _num(med["handoff_p50_us"]), _num(data["ratio"]["handoff_p50_us"][impl], 2),
                    _num(med["handoff_p99_us"]), _num(med.get("cpu_per_acquisition_us")),
                    _num(data["ratio"].get("cpu_per_acquisition_us", {}).get(impl), 2),
                    _num(med["requests_per_acquisition"], 2), str(data["overlaps"][impl]),
                    str(data.get("occupancy_overlaps", {}).get(impl, "-")),
                    str(data.get("token_inversions", {}).get(impl, "-")),
                ])
        parts.append(_table(["N impl", "acq/s", "acq/s x", "hand-offs %", "handoff p50 us",
                             "p50 x", "handoff p99 us", "CPU us/acq", "CPU x", "req/acq",
                             "overlaps", "occupied>1", "token inv."], rows))
        parts.append("hand-offs %: of the successive sections of two processes, those whose "
                     "second had called acquire() before the first's release (only these time a "
                     "hand-off); overlaps: adjacent sections; occupied>1: entries that found the "
                     "shared occupancy counter taken; token inv.: successive sections whose "
                     "fencing tokens did not grow")
        untimed = con.get("untimed", {})
        if untimed:
            parts.append("untimed rounds (warm-up, counting), overlaps / occupied>1 / token "
                         "inversions: " + "; ".join(
                             f"{impl} {u['overlaps']}/{u['occupancy_overlaps']}/"
                             f"{u['token_inversions']} in {u['acquisitions']} acquisitions"
                             for impl, u in untimed.items()))
        for n, data in con["by_n"].items():
            for impl, counted in data.get("requests_by_type", {}).items():
                parts.append(f"N={n} {impl}: {counted['total_per_acquisition']:.2f} requests per "
                             "acquisition (client count): " + ", ".join(
                                 f"{k} {v:.2f}" for k, v in counted["per_acquisition"].items()))
    sca = document.get("scale")
    if sca:
        # Runs before the scale suite repeated (one run each) have no ratios.
        ratio = sca.get("ratio", {"hold": {}, "waiters": {}})

        def times(suite: str, metric: str, impl: str) -> str:
            return _num(ratio[suite].get(metric, {}).get(impl), 2)

        repeats = sca.get("repeats", 1)
        runs = f"{repeats} repeat" + ("s" if repeats != 1 else "")
        rows = []
        for impl, h in sca["hold"].items():
            rows.append([impl, str(h["locks"]), _num(h["acquire_s"], 2),
                         times("hold", "acquire_s", impl), _num(h["acquire_cpu_s"], 2),
                         times("hold", "acquire_cpu_s", impl), _num(h["release_s"], 2),
                         times("hold", "release_s", impl), _num(h["rss_growth_mib"], 1),
                         _num(h["peak_growth_mib"], 1), times("hold", "peak_growth_mib", impl),
                         _num(h["peak_rss_mib"], 1)])
        parts.append(f"\nScale: one client holding many locks (a fresh process each; {runs}, "
                     "interleaved: medians, and medians of per-repeat ratios to kazoo)")
        parts.append(_table(["impl", "locks", "acquire s", "x", "acquire CPU s", "x",
                             "release s", "x", "RSS held +MiB", "peak +MiB", "x",
                             "peak RSS MiB"], rows))
        rows = []
        for impl, w in sca["waiters"].items():
            rows.append([impl, f"{w['completed']}/{w['waiters']}", _num(w["chain_s"], 2),
                         times("waiters", "chain_s", impl),
                         str(w["watch_events"]), _num(w["watch_events_per_release"], 3),
                         "-" if w["recipe_wakeups"] is None else str(w["recipe_wakeups"]),
                         ", ".join(f"{k} {v:.2f}" for k, v in
                                   w["requests_by_type_per_handoff"].items())])
        parts.append(f"\nScale: waiters on one lock over {next(iter(sca['waiters'].values()))['sessions']} "
                     "sessions; the holder releases, each waiter acquires then releases "
                     f"({runs}; done: the fewest, watch events: the most of any repeat)")
        parts.append(_table(["impl", "done", "chain s", "x", "watch events", "per release",
                             "recipe wake-ups", "requests per hand-off"], rows))
    return "\n".join(parts)
