"""Post-Release Tasks. Monitoring from the live service's metrics and database; the documents software can write
(deployment notes, status report) are written; notices go through the configured channels; the rest is attested
by a person in a release role."""

import time

import pytest

from relcheck import attest, backup, metrics, notify, postrelease, records
from relcheck.verdict import require

pytestmark = pytest.mark.post_release


def scrape(target, relcheck_config) -> metrics.Scrape:
    answer = target.http.get(relcheck_config.target.routes.metrics)
    require(answer.status == 200, f"metrics endpoint: {answer.describe()}")
    return metrics.parse(answer.text)


@pytest.mark.item("Post-Release Tasks / Monitoring", "Monitor system health")
def test_monitor_system_health(target, evidence):
    status, health = target.service.status(), target.health()
    evidence.kv("Now", {"service": status.detail, "health": health.describe()})
    assert status.running, f"service is not running: {status.detail}"
    assert health.status == 200, f"health check failed: {health.describe()}"


@pytest.mark.item("Post-Release Tasks / Monitoring", "Track performance metrics")
def test_track_performance_metrics(target, relcheck_config, evidence):
    cfg = relcheck_config.post_release
    require(cfg.latency_histogram, "no latency histogram configured (post_release.latency_histogram)")
    now = scrape(target, relcheck_config)
    labels = cfg.route_labels
    series = {tuple(lbls.get(l, "") for l in labels) for name, lbls, _ in now.families.get(cfg.latency_histogram, [])
              if name == f"{cfg.latency_histogram}_count"}
    rows, slow = [], []
    for key in sorted(series):
        p95 = metrics.histogram_quantile(now, cfg.latency_histogram, 0.95, **dict(zip(labels, key)))
        if p95 is None:
            continue
        rows.append((" ".join(key), f"{p95 * 1000:.1f}"))
        if p95 * 1000 > cfg.p95_ms:
            slow.append(f"{' '.join(key)} p95 {p95 * 1000:.0f} ms")
    evidence.table(f"p95 per route since the service started ({cfg.latency_histogram}, bucket resolution)",
                   ["route", "p95 ms"], rows)
    require(rows, f"{cfg.latency_histogram} has no observations")
    assert not slow, f"slower than {cfg.p95_ms:g} ms at p95: {', '.join(slow)}"


@pytest.mark.item("Post-Release Tasks / Monitoring", "Watch error rates")
def test_watch_error_rates(target, relcheck_config, evidence):
    cfg = relcheck_config.post_release
    require(cfg.request_counter, "no request counter configured (post_release.request_counter)")
    now = scrape(target, relcheck_config)
    statuses = metrics.label_values(now, cfg.request_counter, cfg.status_label)
    counts = {s: now.value(cfg.request_counter, **{cfg.status_label: s}) or 0 for s in statuses}
    total, errors = sum(counts.values()), sum(n for s, n in counts.items() if s.startswith("5"))
    evidence.table("Requests by status", ["status", "requests"], sorted(counts.items()))
    require(total, f"{cfg.request_counter} counts no requests yet")
    assert errors / total <= cfg.error_budget, \
        f"{errors / total:.2%} of {total:.0f} requests answered 5xx (budget {cfg.error_budget:.1%})"


@pytest.mark.item("Post-Release Tasks / Monitoring", "Check resource usage")
def test_check_resource_usage(target, relcheck_config, evidence):
    cfg = relcheck_config.post_release
    first = scrape(target, relcheck_config)
    time.sleep(cfg.sample_s)
    second = scrape(target, relcheck_config)
    cpu = [s.value("process_cpu_seconds_total") for s in (first, second)]
    rss = second.value("process_resident_memory_bytes")
    require(None not in cpu and rss is not None, "the service exports no process_cpu_seconds_total / "
                                                 "process_resident_memory_bytes")
    cpu_percent = 100 * (cpu[1] - cpu[0]) / cfg.sample_s
    evidence.kv("Service process", {"CPU": f"{cpu_percent:.1f} % of a core over {cfg.sample_s:g} s "
                                           f"(limit {cfg.cpu_percent:g})",
                                    "memory": f"{rss / 2**20:.0f} MB (limit {cfg.memory_mb:g})"})
    assert rss / 2**20 <= cfg.memory_mb, f"memory {rss / 2**20:.0f} MB > {cfg.memory_mb:g} MB"
    assert cpu_percent <= cfg.cpu_percent, f"CPU {cpu_percent:.0f} % > {cfg.cpu_percent:g} %"


@pytest.mark.item("Post-Release Tasks / Monitoring", "Verify data integrity")
def test_verify_data_integrity(target, relcheck_config, evidence):
    deployed = records.read(records.deploy_record_path(relcheck_config))
    require(deployed and deployed.get("backup", {}).get("tables"), "no deploy record with a backup to compare with")
    with target.database() as conn:
        now = backup.fingerprints(conn)
    rows = [(table, f["rows"], now[table].rows if table in now else None)
            for table, f in deployed["backup"]["tables"].items()]
    evidence.table("Rows before the deploy and now", ["table", "before", "now"], rows)
    lost = [f"{t} ({before} -> {after})" for t, before, after in rows if after is None or after < before]
    assert not lost, f"rows that existed before the deploy are gone: {', '.join(lost)}"


@pytest.mark.item("Post-Release Tasks / Documentation", "Record deployment notes")
def test_record_deployment_notes(relcheck_config, evidence):
    path = postrelease.deployment_notes(relcheck_config)
    require(path, "no deploy record of this release to take notes from (relcheck deploy)")
    evidence.text(path.name, path.read_text())


@pytest.mark.item("Post-Release Tasks / Documentation", "Prepare status report")
def test_prepare_status_report(relcheck_config, evidence):
    path = postrelease.status_report(relcheck_config)
    require(path, "no run of this release to report on")
    evidence.text(path.name, path.read_text())


HUMAN = [("Post-Release Tasks / Documentation", "Update system documentation"),
         ("Post-Release Tasks / Documentation", "Document issues/resolutions"),
         ("Post-Release Tasks / Documentation", "Update runbooks"),
         ("Post-Release Tasks / Communication", "Schedule review meeting"),
         ("Post-Release Tasks / Communication", "Collect feedback"),
         ("Post-Release Tasks / Communication", "Plan improvements")]


@pytest.mark.parametrize("section, item", [pytest.param(s, i, marks=pytest.mark.item(s, i), id=i) for s, i in HUMAN])
def test_attested_task(section, item, attestations, evidence):
    attest.confirmed(attestations.get(f"{section} :: {item}", []), evidence)


@pytest.mark.item("Post-Release Tasks / Communication", "Notify stakeholders")
def test_notify_release_done(relcheck_config, evidence):
    deliveries = notify.deliver(relcheck_config, "released", [], evidence)
    require(deliveries, notify.NO_CHANNEL)
    assert not notify.refused(deliveries), f"notice not accepted by {notify.refused(deliveries)}"


@pytest.mark.item("Post-Release Tasks / Communication", "Update status board")
def test_update_status_board(relcheck_config, evidence):
    board, release = relcheck_config.notify.status_board, relcheck_config.release
    require(board, "no status board configured (notify.status_board)")
    latest = records.manifests(relcheck_config)
    status = f"{release.product} {release.version}: " + (f"{latest[0]['run']['label']} {latest[0]['verdict']}"
                                                          if latest else "released")
    delivery = notify.send_webhook(board.url, "status", status, board.timeout_s)
    evidence.kv("Status board", {"posted": status, "answer": delivery.detail})
    assert delivery.accepted, f"status board did not accept the update: {delivery.detail}"
