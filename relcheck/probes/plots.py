"""Small PNG plots for the report (matplotlib, headless)."""

from __future__ import annotations

import io

from relcheck.probes.loadtest import LoadResult


def timeline(result: LoadResult, title: str) -> bytes:
    """Throughput and users (top), p50/p95 latency (bottom), per second of the run."""
    series = [s for s in result.series if s.count]
    if not series:
        return b""
    import matplotlib  # imported when drawing: matplotlib is slow to load

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = series[0].at
    xs = [s.at - t0 for s in series]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.2), dpi=80, sharex=True)
    top.plot(xs, [s.count for s in series], label="requests/s")
    top.plot(xs, [s.failures for s in series], label="failures/s", color="tab:red")
    users = top.twinx()
    users.step(xs, [s.users for s in series], where="post", color="tab:gray", alpha=0.6, label="users")
    users.set_ylabel("users")
    top.set_ylabel("per second")
    top.legend(loc="upper left", fontsize=8)
    bottom.plot(xs, [s.hdr.get_value_at_percentile(50) / 1000 for s in series], label="p50")
    bottom.plot(xs, [s.hdr.get_value_at_percentile(95) / 1000 for s in series], label="p95")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper left", fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
