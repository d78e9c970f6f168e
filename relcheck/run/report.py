"""The checklist view of the HTML report: a header, then every section in the checklist's order with each item's
status, checks, duration, reason and evidence. Everything from a target or tool is escaped."""

from __future__ import annotations

from html import escape

from relcheck.core import evidence
from relcheck.run.phases import run_phases
from relcheck.run.results import ItemResult

CSS = """
.rc { font-family: Helvetica, Arial, sans-serif; margin: 1em 0 2em; }
.rc h2 { margin: 1.2em 0 .3em; } .rc h3 { margin: 1em 0 .3em; font-size: 1.05em; }
.rc table { border-collapse: collapse; width: 100%; font-size: 13px; }
.rc th, .rc td { border: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
.rc-header th { width: 14em; background: #f6f6f6; }
.rc-verdict { font-size: 1.6em; font-weight: bold; padding: .2em .6em; display: inline-block; border-radius: 4px; }
.rc-verdict.READY, .rc-verdict.PROCEED { background: #2e7d32; color: #fff; }
.rc-verdict.BLOCKED, .rc-verdict.ROLLBACK { background: #c62828; color: #fff; }
.rc-verdict.PARTIAL { background: #ef6c00; color: #fff; }
#environment-header, #environment { display: none; }
.rc-status { font-weight: bold; white-space: nowrap; }
.st-pass { color: #2e7d32; } .st-warn { color: #ef6c00; } .st-waived { color: #6a1b9a; }
.st-fail { color: #c62828; } .st-not-verified { color: #ad1457; } .st-pending-attestation { color: #1565c0; }
.st-not-covered { color: #616161; } .st-not-run { color: #9e9e9e; }
.rc details summary { cursor: pointer; color: #1565c0; }
.ev { margin: .4em 0; } .ev-title { font-weight: bold; }
.ev pre { white-space: pre-wrap; background: #f7f7f7; padding: 4px; max-height: 30em; overflow: auto; }
.ev-image { max-width: 100%; }
"""


def status_class(status: str) -> str:
    return "st-" + status.replace(" ", "-")


def _row(label: str, value: str, raw: bool = False, ident: str = "") -> str:
    ident_attr = f' id="{ident}"' if ident else ""
    return f"<tr><th>{escape(label)}</th><td{ident_attr}>{value if raw else escape(value)}</td></tr>"


SIGNOFF_START, SIGNOFF_END = "<!-- relcheck:signoffs -->", "<!-- /relcheck:signoffs -->"


def signoff_table(signoffs: list[tuple[str, str, str, str]]) -> str:
    """(role, principal, key fingerprint, signed at) rows, as the report shows them."""
    if not signoffs:
        return f'{SIGNOFF_START}<h3>Sign-off</h3><p id="rc-signoffs">No signatures yet.</p>{SIGNOFF_END}'
    rows = "".join(
        f"<tr><td>{escape(role)}</td><td>{escape(principal)}</td><td>{escape(fp)}</td><td>{escape(at)}</td></tr>"
        for role, principal, fp, at in signoffs
    )
    return (
        f'{SIGNOFF_START}<h3>Sign-off</h3><table id="rc-signoffs"><thead><tr><th>Role</th><th>Principal</th>'
        f"<th>Key</th><th>Signed at</th></tr></thead><tbody>{rows}</tbody></table>{SIGNOFF_END}"
    )


def tested_tree_line(tested: dict) -> str:
    if not tested:
        return "not recorded"
    if tested.get("error"):
        return f"{tested.get('source', '')}: not verified ({tested['error']})"
    return f"{tested['source']}: tree {tested['tree'][:12]}, {tested['summary']}"


def render(manifest: dict, results: list[ItemResult], manifest_sha256: str, signoffs: str = "") -> str:
    """The checklist section of the report, from the manifest alone (so anyone can re-render and compare it)."""
    header, verdict, reasons = manifest, manifest["verdict"], manifest["verdict_reasons"]
    contacts = manifest.get("contacts", [])
    run = header["run"]
    rows = [
        _row(
            "Verdict", f'<span class="rc-verdict {escape(verdict)}" id="rc-verdict">{escape(verdict)}</span>', raw=True
        ),
        _row("Product", header["product"]),
        _row("Release version", header["release_version"]),
        _row("Release id", header["release_id"]),
        _row("Run", run["label"]),
        _row("Release git SHA", header.get("release_sha") or "unknown"),
        _row("Tested tree", tested_tree_line(header.get("tested_tree") or {})),
        _row("Target", ", ".join(f"{k}: {v}" for k, v in run["target"].items())),
        _row("Config", f"{run['config_file']} (sha256 {run['config_sha256']})"),
        _row("Started", run["started"]),
        _row("Finished", run["finished"]),
        _row("Counts", ", ".join(f"{n} {s}" for s, n in header["counts"].items() if n)),
        _row("Manifest sha256", manifest_sha256, ident="manifest-sha256"),
    ]
    if reasons:
        rows.append(_row("Why", "<ul>" + "".join(f"<li>{escape(r)}</li>" for r in reasons) + "</ul>", raw=True))
    if contacts:
        rows.append(
            _row(
                "Emergency contacts", "<br/>".join(f"{escape(role)}: {escape(who)}" for role, who in contacts), raw=True
            )
        )
    parts = [
        f"<style>{CSS}</style>",
        '<div class="rc" id="relcheck-checklist">',
        f"<h2>{escape(header['product'])} {escape(header['release_version'])} — release checklist</h2>",
        f'<table class="rc-header">{"".join(rows)}</table>',
        _trend(manifest.get("trend")),
        _timeline(manifest.get("timeline")),
        signoffs or signoff_table([]),
    ]
    phases = run_phases(run.get("markexpr", ""))
    sections = list(dict.fromkeys(r.item.section for r in results))
    own = [s for s in sections if any(r.checks or r.item.phase in phases for r in results if r.item.section == s)]
    part = None
    for section in own:  # this run's phases first, in the seed's order
        top, name = section.split(" / ", 1)
        if top != part:
            parts.append(f"<h2>{escape(top)}</h2>")
            part = top
        parts.append(f"<h3>{escape(name)}</h3>")
        parts.append(_section_table([r for r in results if r.item.section == section]))
    others = [s for s in sections if s not in own]
    if others:  # other phases' items: one collapsed line per section
        parts.append("<h2>Other phases (not run here)</h2>")
        for section in others:
            found = [r for r in results if r.item.section == section]
            statuses = ", ".join(sorted({r.status.value for r in found}))
            parts.append(
                f'<details class="rc-folded"><summary>{escape(section)}: {len(found)} items, {escape(statuses)}'
                f"</summary>{_section_table(found)}</details>"
            )
    parts.append("</div>")
    return "".join(parts)


def _section_table(found: list[ItemResult]) -> str:
    return (
        '<table class="rc-section"><thead><tr><th>Item</th><th>Status</th><th>Checks</th>'
        "<th>Duration</th><th>Details</th></tr></thead><tbody>"
        + "".join(_item_row(r) for r in found)
        + "</tbody></table>"
    )


STATUS_COLOURS = {"pass": "#2e7d32", "warn": "#f9a825", "waived": "#f9a825", "fail": "#c62828"}


def _timeline(timeline: dict | None) -> str:
    """One strip per item, a cell per monitoring run (oldest left), coloured by status; the time and status on hover.
    Plain SVG built from the manifest, so a re-render is byte-identical."""
    if not timeline or max(len(runs) for runs in timeline.values()) < 2:
        return ""
    rows = []
    for key, runs in timeline.items():
        cells = "".join(
            f'<rect x="{i * 14}" y="0" width="12" height="12" fill="{STATUS_COLOURS.get(status, "#9e9e9e")}">'
            f"<title>{escape(at)}: {escape(status)}</title></rect>"
            for i, (at, status) in enumerate(runs)
        )
        strip = f'<svg width="{len(runs) * 14}" height="12" role="img">{cells}</svg>'
        rows.append(f"<tr><td>{escape(key.split(' :: ')[1])}</td><td>{strip}</td><td>{escape(runs[-1][1])}</td></tr>")
    runs_count = max(len(runs) for runs in timeline.values())
    return (
        f"<h3>Timeline: {runs_count} monitoring runs of this release (oldest left)</h3>"
        '<table class="rc-trend"><thead><tr><th>Item</th><th>Runs</th><th>Now</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _trend(trend: dict | None) -> str:
    if not trend:
        return ""
    counts = "".join(
        f"<tr><td>{escape(status)}</td><td>{'-' if before is None else before}</td><td>{now}</td></tr>"
        for status, (before, now) in trend["counts"].items()
        if before or now
    )
    p95 = "".join(
        f"<tr><td>{escape(route)}</td><td>{_ms(before)}</td><td>{_ms(now)}</td></tr>"
        for route, (before, now) in trend.get("p95_ms", {}).items()
    )
    table = (
        f'<table class="rc-trend"><thead><tr><th>Items</th><th>{escape(trend["previous"])}</th><th>this release'
        f"</th></tr></thead><tbody>{counts}</tbody></table>"
    )
    if p95:
        table += (
            f'<table class="rc-trend"><thead><tr><th>p95 per route (ms)</th><th>{escape(trend["previous"])}'
            f"</th><th>this release</th></tr></thead><tbody>{p95}</tbody></table>"
        )
    return f"<h3>Trend against {escape(trend['previous'])}</h3>{table}"


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _item_row(result: ItemResult) -> str:
    status = result.status.value
    checks = "<br/>".join(f"{escape(c.nodeid.split('::')[-1])} ({escape(c.status.value)})" for c in result.checks)
    duration = f"{sum(c.duration_s for c in result.checks):.2f} s" if result.checks else ""
    details = f"<div>{escape(result.reason)}</div>" if result.reason else ""
    blocks = [b for c in result.checks for b in c.evidence]
    if blocks:
        details += f"<details><summary>evidence</summary>{evidence.render(blocks)}</details>"
    return (
        f'<tr class="rc-item" data-key="{escape(result.item.key)}" data-status="{escape(status)}">'
        f"<td>{escape(result.item.text)}</td>"
        f'<td class="rc-status {status_class(status)}">{escape(status.upper())}</td>'
        f"<td>{checks}</td><td>{duration}</td><td>{details}</td></tr>"
    )
