"""Sign-offs of a run's report by the release roles, and `relcheck verify`: the report, its manifest, evidence
and signatures still agree, and every signature is by a key allowed for its role."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

from relcheck.core import evidence as evidence_module
from relcheck.core.config import Config
from relcheck.core.files import write_atomic
from relcheck.core.statuses import GO
from relcheck.run import results
from relcheck.run.phases import run_phases
from relcheck.run.report import SIGNOFF_END, SIGNOFF_START, render, signoff_table
from relcheck.signing import signatures


@dataclass
class Signoff:
    role: str
    principal: str
    signed_at: str
    fingerprint: str
    path: Path
    ok: bool
    problem: str = ""


def not_signable(manifest: dict) -> str:
    """Why a run's report cannot carry a release sign-off ("" when it can): its verdict is not READY/PROCEED, it is
    a partial run, or an item of its phases has no result."""
    verdict = manifest.get("verdict", "no verdict")
    if verdict not in GO:
        reasons = manifest.get("verdict_reasons") or ["no reason recorded"]
        return f"its verdict is {verdict} ({reasons[0]})"
    if manifest.get("run", {}).get("partial"):
        return f"it is a partial run ({manifest['run']['partial'][0]})"
    phases = run_phases(manifest.get("run", {}).get("markexpr", ""))
    unchecked = [
        i["item"]
        for i in manifest.get("items", [])
        if i.get("phase") in phases and i["status"] in ("not run", "not covered")
    ]
    return f"items of its phases have no result: {', '.join(unchecked[:3])}" if unchecked else ""


@dataclass
class Verification:
    run_dir: Path
    integrity: list[str] = field(default_factory=list)  # report, manifest and evidence disagree
    signoffs: list[Signoff] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        return self.integrity + [s.problem for s in self.signoffs if not s.ok]

    @property
    def ok(self) -> bool:
        return not self.problems


def run_dir_of(report: Path) -> Path:
    report = Path(report)
    return report if report.is_dir() else report.parent


def role_principals(cfg: Config, role: str) -> list[str]:
    return cfg.signoff.roles.get(role, [])


def signers(cfg: Config) -> signatures.AllowedSigners:
    return signatures.AllowedSigners(cfg.resolve(cfg.signoff.allowed_signers))


def read_signoffs(cfg: Config, run_dir: Path, manifest: dict, manifest_sha: str) -> list[Signoff]:
    allowed = signers(cfg)
    found = []
    for path, text, armored in signatures.read_pairs(run_dir / "signoffs"):
        try:
            statement = signatures.Statement.parse(text)
        except signatures.SigningError as exc:
            found.append(Signoff("?", "?", "", "", path, False, f"{path.name}: {exc}"))
            continue
        role, principal = statement.get("role"), statement.get("principal")
        entry = Signoff(role, principal, statement.get("signed-at"), "", path, False)
        if statement.kind != "signoff":
            entry.problem = f"{path.name}: not a sign-off statement"
        elif statement.get("manifest-sha256") != manifest_sha:
            entry.problem = f"{role}: signed another manifest ({statement.get('manifest-sha256')[:12]}…)"
        elif statement.get("release") != manifest["release_id"] or statement.get("run") != manifest["run"]["label"]:
            entry.problem = f"{role}: signed another release or run"
        elif principal not in role_principals(cfg, role):
            entry.problem = f"{role}: {principal} is not a principal of this role"
        else:
            verdict = signatures.verify(text, armored, allowed, principal)
            entry.ok, entry.problem, entry.fingerprint = (
                verdict.ok,
                (f"{role}: {verdict.problem}" if not verdict.ok else ""),
                verdict.fingerprint,
            )
        found.append(entry)
    return found


def signoff_html(signoffs: list[Signoff]) -> str:
    return signoff_table([(s.role, s.principal, s.fingerprint, s.signed_at) for s in signoffs if s.ok])


class _Statuses(HTMLParser):
    """item key -> (data-status, the status text shown) from the report's checklist rows."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self._key, self._in_status = None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "rc-item" in (attrs.get("class") or ""):
            self._key = attrs.get("data-key")
            self.rows[self._key] = [attrs.get("data-status", ""), ""]
        elif tag == "td" and self._key and "rc-status" in (attrs.get("class") or ""):
            self._in_status = True

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_status = False
        elif tag == "tr":
            self._key = None

    def handle_data(self, data):
        if self._in_status and self._key:
            self.rows[self._key][1] += data


def verify(cfg: Config, report: Path) -> Verification:
    run_dir = run_dir_of(report)
    check = Verification(run_dir)
    paths = {name: run_dir / name for name in ("report.html", "manifest.json", "evidence.json")}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing:
        check.integrity.append(f"missing in {run_dir}: {', '.join(missing)}")
        return check
    manifest_bytes = paths["manifest.json"].read_bytes()
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    html = paths["report.html"].read_text(encoding="utf-8")
    try:
        manifest = json.loads(manifest_bytes)
        evidence = json.loads(paths["evidence.json"].read_text(encoding="utf-8"))
    except ValueError as exc:
        check.integrity.append(f"manifest or evidence is not valid JSON ({exc})")
        return check
    check.manifest = manifest
    shown = re.search(r'id="manifest-sha256">([0-9a-f]{64})<', html)
    if not shown or shown.group(1) != manifest_sha:
        check.integrity.append(
            f"manifest.json (sha256 {manifest_sha[:12]}…) is not the manifest the report shows "
            f"({shown.group(1)[:12] + '…' if shown else 'none'})"
        )
    parser = _Statuses()
    parser.feed(html)
    try:
        for item in manifest["items"]:
            for c in item["checks"]:
                if evidence_module.digest(evidence.get(c["test"], [])) != c["evidence_sha256"]:
                    check.integrity.append(f"evidence of {c['test']} does not match its digest in the manifest")
            key = f"{item['section']} :: {item['item']}"
            status, text = parser.rows.get(key, ["", ""])
            if status != item["status"] or text.strip().lower() != item["status"]:
                check.integrity.append(
                    f"report.html shows {key} as {text.strip() or status or 'missing'}, "
                    f"the manifest says {item['status']}"
                )
    except (KeyError, TypeError, AttributeError) as exc:
        check.integrity.append(f"manifest.json is not a readable relcheck manifest ({type(exc).__name__})")
        return check
    try:
        check.signoffs = read_signoffs(cfg, run_dir, manifest, manifest_sha)
        expected = render(
            manifest, results.from_manifest(manifest, evidence), manifest_sha, signoff_html(check.signoffs)
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        check.integrity.append(f"manifest.json is not a readable relcheck manifest ({type(exc).__name__}: {exc})")
        return check
    if expected not in html and not check.problems:
        check.integrity.append(
            "the checklist section of report.html differs from what manifest.json and evidence.json render (edited?)"
        )
    return check


def refresh_html(cfg: Config, run_dir: Path) -> None:
    """Rewrite the report's sign-off table from the valid signatures (atomically)."""
    manifest_bytes = (run_dir / "manifest.json").read_bytes()
    manifest, sha = json.loads(manifest_bytes), hashlib.sha256(manifest_bytes).hexdigest()
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    start, end = html.index(SIGNOFF_START), html.index(SIGNOFF_END) + len(SIGNOFF_END)
    table = signoff_html(read_signoffs(cfg, run_dir, manifest, sha))
    write_atomic(run_dir / "report.html", html[:start] + table + html[end:])


def sign(cfg: Config, report: Path, role: str, key: Path) -> Signoff:
    """Sign a run's manifest as a role with an SSH key allowed for one of the role's principals."""
    run_dir = run_dir_of(report)
    if role not in cfg.signoff.roles:
        raise signatures.SigningError(f"unknown role {role!r} (signoff.roles: {', '.join(cfg.signoff.roles)})")
    before = verify(cfg, run_dir)
    if before.problems:
        raise signatures.SigningError(f"will not sign a report that does not verify: {before.problems[0]}")
    refused = not_signable(before.manifest)
    if refused:
        raise signatures.SigningError(f"will not sign {run_dir.name}: {refused}")
    allowed, public = signers(cfg), signatures.public_key(key)
    principals = [p for p in role_principals(cfg, role) if allowed.allows(p, public)]
    if not principals:
        raise signatures.SigningError(
            f"this key is not allowed for {role} (the key's principals: "
            f"{', '.join(sorted(allowed.principals_of(public))) or 'none'}; the role's: "
            f"{', '.join(role_principals(cfg, role))})"
        )
    manifest_sha = hashlib.sha256((run_dir / "manifest.json").read_bytes()).hexdigest()
    statement = signatures.Statement(
        "signoff",
        (
            ("release", before.manifest["release_id"]),
            ("run", before.manifest["run"]["label"]),
            ("manifest-sha256", manifest_sha),
            ("role", role),
            ("principal", principals[0]),
            ("signed-at", datetime.now(timezone.utc).isoformat(timespec="seconds")),
        ),
    )
    text = statement.text()
    path = signatures.write_pair(run_dir / "signoffs", signatures.slug(role), text, signatures.sign(text, key))
    refresh_html(cfg, run_dir)
    return next(s for s in verify(cfg, run_dir).signoffs if s.path == path)
