"""Attestations: a person in a release role confirms an item only a person can (a meeting held, runbooks
updated...), with a note, signed with their SSH key. The item shows who attested, when, and the note."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from relcheck.core import checklist as checklist_module
from relcheck.core import records
from relcheck.core.config import Config
from relcheck.signing import signatures


@dataclass
class Attestation:
    item: str
    role: str
    principal: str
    note: str
    at: str
    ok: bool
    problem: str = ""


def directory(cfg: Config) -> Path:
    return records.release_dir(cfg) / "attestations"


def attest(cfg: Config, item_key: str, role: str, note: str, key: Path) -> Path:
    section, sep, text = item_key.partition(" :: ")
    if not sep:
        raise signatures.SigningError("--item is '<section> :: <item>', e.g. 'Post-Rollback :: Plan resolution'")
    checklist = checklist_module.load(cfg.checklist and str(cfg.resolve(cfg.checklist)) or None)
    item = checklist.find(section, text)
    if not note.strip():
        raise signatures.SigningError("an attestation needs a note (what was done, where to find it)")
    allowed, public = signatures.AllowedSigners(cfg.resolve(cfg.signoff.allowed_signers)), signatures.public_key(key)
    principals = [p for p in cfg.signoff.roles.get(role, []) if allowed.allows(p, public)]
    if not principals:
        raise signatures.SigningError(f"this key is not allowed for {role}")
    statement = signatures.Statement(
        "attestation",
        (
            ("release", cfg.release.release_id),
            ("item", item.key),
            ("role", role),
            ("principal", principals[0]),
            ("note", " ".join(note.split())),
            ("attested-at", datetime.now(timezone.utc).isoformat(timespec="seconds")),
        ),
    )
    text = statement.text()
    return signatures.write_pair(
        directory(cfg), f"{signatures.slug(item.key)}--{signatures.slug(role)}", text, signatures.sign(text, key)
    )


def read(cfg: Config) -> list[Attestation]:
    """Every attestation of this release, each verified against the roles and allowed signers."""
    pairs = signatures.read_pairs(directory(cfg))
    if not pairs:
        return []
    allowed = signatures.AllowedSigners(cfg.resolve(cfg.signoff.allowed_signers))
    found = []
    for path, text, armored in pairs:
        try:
            statement = signatures.Statement.parse(text)
        except signatures.SigningError as exc:
            found.append(Attestation("?", "?", "?", "", "", False, f"{path.name}: {exc}"))
            continue
        a = Attestation(
            statement.get("item"),
            statement.get("role"),
            statement.get("principal"),
            statement.get("note"),
            statement.get("attested-at"),
            False,
        )
        if statement.kind != "attestation" or statement.get("release") != cfg.release.release_id:
            a.problem = f"{path.name}: not an attestation of {cfg.release.release_id}"
        elif a.principal not in cfg.signoff.roles.get(a.role, []):
            a.problem = f"{a.principal} is not a principal of {a.role}"
        else:
            verdict = signatures.verify(text, armored, allowed, a.principal)
            a.ok, a.problem = verdict.ok, verdict.problem
        found.append(a)
    return found


def confirmed(found: list[Attestation], evidence, what: str = "") -> Attestation:
    """The item's valid attestation (shown as evidence); pending until someone attests (what: the thing a person
    attests, when the item is more than that)."""
    from relcheck.core.statuses import Pending

    evidence.table(
        "Attestations",
        ["role", "principal", "at", "note", "valid"],
        [(a.role, a.principal, a.at, a.note, "yes" if a.ok else f"NO: {a.problem}") for a in found],
    )
    valid = [a for a in found if a.ok]
    if not valid:
        raise Pending(
            (f"{what}: " if what else "")
            + "awaiting an attestation (relcheck attest --item '<section> :: <item>' --role ROLE "
            "--note NOTE --key KEY)" + (f"; {len(found)} invalid" if found else "")
        )
    return valid[0]
