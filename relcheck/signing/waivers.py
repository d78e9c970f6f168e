"""Waivers: a finding (or a whole checklist item) accepted for a while, with a reason, an approving role and that
role's SSH signature (written by `relcheck waive`):

    [[waiver]]
    id = "WVR-2026-004"
    finding = "PYSEC-2023-83"            # a finding id or alias; or item = "<section> :: <item>"
    reason = "path traversal needs StaticFiles, which the service does not mount"
    approver = "Security Team Lead"
    principal = "security.lead@kundli.example"
    expires = 2027-01-31
    signature = "-----BEGIN SSH SIGNATURE----- ..."   # (a multi-line string)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from relcheck.core.statuses import NotVerified
from relcheck.signing.signatures import AllowedSigners, Statement, verify


@dataclass
class Waiver:
    id: str
    finding: str
    item: str
    reason: str
    approver: str
    expires: date | None
    problems: list[str]
    principal: str = ""

    def statement(self, product: str) -> Statement:
        return Statement(
            "waiver",
            (
                ("product", product),
                ("id", self.id),
                ("finding", self.finding),
                ("item", self.item),
                ("reason", self.reason),
                ("approver", self.approver),
                ("principal", self.principal),
                ("expires", self.expires.isoformat() if self.expires else ""),
            ),
        )

    def state(self, today: date) -> str:
        """ "valid", or why the waiver does not count."""
        if self.problems:
            return "; ".join(self.problems)
        if self.expires is None:  # load() records this as a problem
            return "no expires"
        if self.expires < today:
            return f"expired on {self.expires.isoformat()}"
        return "valid"

    def covers(self, ids: set[str]) -> bool:
        return bool(self.finding) and self.finding in ids


def load(path: Path, roles: dict[str, list[str]], signers: AllowedSigners | None, product: str) -> list[Waiver]:
    """Waivers from a file; each one's problems say why it does not count (unsigned, wrong role, ...)."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise NotVerified(f"waivers file {path.name} is not valid TOML: {exc}") from None
    waivers = []
    for n, raw in enumerate(data.get("waiver", []), 1):
        problems = []
        for key in ("id", "reason", "approver", "expires"):
            if not raw.get(key):
                problems.append(f"no {key}")
        if not (raw.get("finding") or raw.get("item")):
            problems.append("names neither a finding nor an item")
        if raw.get("approver") and raw["approver"] not in roles:
            problems.append(f"approver {raw['approver']!r} is not a release role")
        expires = raw.get("expires")
        if expires is not None and (not isinstance(expires, date) or isinstance(expires, datetime)):
            problems.append("expires is not a date (write expires = 2027-01-31)")
            expires = None
        waiver = Waiver(
            str(raw.get("id", f"#{n}")),
            str(raw.get("finding", "")),
            str(raw.get("item", "")),
            str(raw.get("reason", "")),
            str(raw.get("approver", "")),
            expires,
            problems,
            str(raw.get("principal", "")),
        )
        if not problems:
            problems += signature_problems(waiver, str(raw.get("signature", "")), roles, signers, product)
        waivers.append(waiver)
    return waivers


def signature_problems(
    waiver: Waiver, armored: str, roles: dict[str, list[str]], signers: AllowedSigners | None, product: str
) -> list[str]:
    if not armored:
        return ["not signed by its approver"]
    if signers is None:
        return ["cannot check its signature: no allowed signers configured (signoff.allowed_signers)"]
    if waiver.principal not in roles.get(waiver.approver, []):
        return [f"signed by {waiver.principal or 'nobody'}, who is not a {waiver.approver}"]
    verdict = verify(waiver.statement(product).text(), armored, signers, waiver.principal)
    return [] if verdict.ok else [f"signature invalid: {verdict.problem}"]


def for_item(waivers: list[Waiver], key: str) -> Waiver | None:
    matching = [w for w in waivers if w.item == key]
    today = date.today()
    return next((w for w in matching if w.state(today) == "valid"), matching[0] if matching else None)


def for_finding(waivers: list[Waiver], ids: set[str]) -> Waiver | None:
    """The waiver naming this finding; a valid one wins over an expired or unapproved one."""
    matching = [w for w in waivers if w.covers(ids)]
    today = date.today()
    return next((w for w in matching if w.state(today) == "valid"), matching[0] if matching else None)


def load_for(cfg) -> list[Waiver]:
    """The target's waivers (security.waivers), checked against the sign-off roles and allowed signers."""
    if not cfg.security.waivers:
        return []
    signers = AllowedSigners(cfg.resolve(cfg.signoff.allowed_signers)) if cfg.signoff.allowed_signers else None
    return load(cfg.source / cfg.security.waivers, cfg.signoff.roles, signers, cfg.release.product)


def waive(cfg, waiver_id: str, finding: str, item: str, reason: str, role: str, expires: str, key: Path) -> Waiver:
    """Append a waiver signed by the approving role to the target's waivers file."""
    from relcheck.signing.signatures import SigningError, public_key, sign

    if not cfg.security.waivers:
        raise SigningError("no waivers file configured (security.waivers)")
    signers = AllowedSigners(cfg.resolve(cfg.signoff.allowed_signers))
    public = public_key(key)
    principals = [p for p in cfg.signoff.roles.get(role, []) if signers.allows(p, public)]
    if not principals:
        raise SigningError(f"this key is not allowed for {role}")
    try:
        until = date.fromisoformat(expires)
    except ValueError:
        raise SigningError(f"--expires {expires!r} is not a date (YYYY-MM-DD)") from None
    waiver = Waiver(waiver_id, finding, item, " ".join(reason.split()), role, until, [], principals[0])
    armored = sign(waiver.statement(cfg.release.product).text(), key)
    path = cfg.source / cfg.security.waivers
    block = "\n".join(
        [
            "",
            "[[waiver]]",
            f"id = {_toml(waiver_id)}",
            f"finding = {_toml(finding)}",
            f"item = {_toml(item)}",
            f"reason = {_toml(waiver.reason)}",
            f"approver = {_toml(role)}",
            f"principal = {_toml(waiver.principal)}",
            f"expires = {until.isoformat()}",
            f'signature = """\n{armored}"""',
            "",
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(block)
    return waiver


def _toml(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)
