"""`relcheck statement`: a complete phase run as an in-toto Statement v1 with the test-result predicate, in a DSSE
envelope each release role signs with its SSH key under its own namespace (relcheck-release-<role>), so that
`ssh-keygen -Y verify` checks it with no relcheck code; and `relcheck verify --statement`.

The envelope is securesystemslib's (DSSE: payload, payloadType, PAE); each signature's `sig` is the SSH signature's
bytes (the base64 body of ssh-keygen's armor) and its `keyid` is "<namespace>/<principal>". The Statement is a plain
dict (in-toto-attestation's bindings build it through protobuf and add nothing we check).

Statuses map onto the predicate as: pass -> passedTests; warn and waived -> warnedTests; fail, not verified and
pending attestation -> failedTests (never passed), each also listed under its own status in the `relcheck` field.
`result` is FAILED when a check is in failedTests, an item of the run's phases has no result, the run's verdict is
not READY/PROCEED or a waiver had expired when the run finished; else WARNED when a check is in warnedTests; else
PASSED.
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path

from securesystemslib.dsse import Envelope
from securesystemslib.signer import Signature

from relcheck.core import checklist as checklist_module
from relcheck.core import records
from relcheck.core.config import Config
from relcheck.core.files import write_atomic
from relcheck.core.statuses import GO, NotVerified
from relcheck.probes.audit import sources
from relcheck.run.outputs import tested_tree
from relcheck.run.phases import run_phases
from relcheck.run.signoff import run_dir_of, signers
from relcheck.run.signoff import verify as verify_report
from relcheck.signing import signatures, waivers

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
FILE = records.STATEMENT
PASSED, WARNED, FAILED = ("pass",), ("warn", "waived"), ("fail", "not verified", "pending attestation")


def namespace(role: str) -> str:
    return f"{signatures.NAMESPACE}-{signatures.slug(role)}"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def matching(base: Path, patterns: list[str], key: str) -> list[Path]:
    """The files the globs name (each must name one), in a stable order."""
    found: list[Path] = []
    for pattern in patterns:
        files = sorted(p for p in map(Path, glob.glob(str(base / pattern))) if p.is_file())  # absolute ones too
        if not files:
            raise signatures.SigningError(f"{key}: {pattern!r} matches no file in {base}")
        found += [f for f in files if f not in found]
    return found


def subjects(cfg: Config, manifest: dict) -> list[dict]:
    """What the statement is about: the release commit, the tested tree, the artifacts and the migration files."""
    tested = manifest.get("tested_tree", {})
    if not manifest.get("release_sha") or not tested.get("tree"):
        raise signatures.SigningError(
            f"the run has no release commit or tested tree ({tested.get('error') or 'not recorded'})"
        )
    found = [
        {"name": f"git-commit:{manifest['release_ref']}", "digest": {"gitCommit": manifest["release_sha"]}},
        {"name": f"git-tree:{manifest['release_ref']}", "digest": {"gitTree": tested["tree"]}},
    ]
    for kind, base, patterns, key in (
        ("artifact", cfg.base, cfg.release.artifacts, "release.artifacts"),
        ("migration", cfg.source, cfg.release.migrations, "release.migrations"),
    ):
        for path in matching(base, patterns, key):
            name = path.relative_to(base) if path.is_relative_to(base) else path
            found.append({"name": f"{kind}:{name}", "digest": {"sha256": sha256_file(path)}})
    return found


def directory_digest(path: Path) -> str:
    """A content digest of a directory (each file's relative name and SHA-256, .git left out) or of a file."""
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts):
        h.update(f"{file.relative_to(path)}\0{sha256_file(file)}\n".encode())
    return h.hexdigest()


def advisory_snapshot(name: str, path: Path, finished: str) -> dict:
    """An advisory source as a resource descriptor: its digest, when its data is from and its age when the run
    finished."""
    if not path.exists():
        raise signatures.SigningError(f"advisory source {name} not found at {path} (security.dependencies.advisories)")
    source = sources.load(path, sources.cache_dir())
    age = source.age_days(datetime.fromisoformat(finished)) if source.taken else None
    annotations = {"kind": source.kind, "taken": source.taken or "unknown", "ageFrom": source.age_from or "unknown"}
    annotations["ageDaysAtRun"] = f"{age:.1f}" if age is not None else "unknown"
    return {"name": f"advisories:{name}", "digest": {"sha256": directory_digest(path)}, "annotations": annotations}


def checklist_bytes(cfg: Config) -> bytes:
    if cfg.checklist:
        return cfg.resolve(cfg.checklist).read_bytes()
    return resources.files("relcheck").joinpath("data", checklist_module.SEED).read_bytes()


def configuration(cfg: Config, manifest: dict) -> list[dict]:
    run = manifest["run"]
    found = [
        {"name": f"config:{run['config_file']}", "digest": {"sha256": run["config_sha256"]}},
        {
            "name": f"checklist:{manifest['checklist']['title']} {manifest['checklist']['version']}",
            "digest": {"sha256": hashlib.sha256(checklist_bytes(cfg)).hexdigest()},
        },
    ]
    if run.get("relcheck_sha"):
        found.append({"name": "tool:relcheck", "digest": {"gitCommit": run["relcheck_sha"]}})
    found += [
        {"name": f"tool:{name}", "uri": f"pkg:{'generic' if name == 'python' else 'pypi'}/{name}@{version}"}
        for name, version in sorted(run.get("tools", {}).items())
        if version != "not installed"
    ]
    found += [advisory_snapshot(a, cfg.resolve(a), run["finished"]) for a in cfg.security.dependencies.advisories]
    return found


def waiver_entries(cfg: Config, on: date) -> list[dict]:
    try:
        found = waivers.load_for(cfg)
    except NotVerified as exc:
        raise signatures.SigningError(str(exc)) from None
    return [
        {
            "id": w.id,
            "finding": w.finding,
            "item": w.item,
            "approver": w.approver,
            "principal": w.principal,
            "expires": w.expires.isoformat() if w.expires else "",
            "state": w.state(on),
        }
        for w in found
    ]


def predicate(cfg: Config, manifest: dict, manifest_sha: str, evidence_sha: str) -> dict:
    phases = run_phases(manifest["run"]["markexpr"])
    items = [i for i in manifest["items"] if i["checks"] or i.get("phase") in phases]
    tests: dict[str, list[str]] = {}
    for item in items:
        for check in item["checks"]:
            tests.setdefault(check["status"], []).append(check["test"])
    finished = datetime.fromisoformat(manifest["run"]["finished"])
    listed = waiver_entries(cfg, finished.date())
    reasons = [f"verdict {manifest['verdict']}"] if manifest["verdict"] not in GO else []
    reasons += [f"{len(tests[s])} check(s) {s}" for s in FAILED if tests.get(s)]
    reasons += [
        f"{i['section']} :: {i['item']}: {i['status']}" for i in items if i["status"] in ("not run", "not covered")
    ]
    reasons += [f"waiver {w['id']} {w['state']}" for w in listed if w["state"].startswith("expired")]
    result = "FAILED" if reasons else "WARNED" if any(tests.get(s) for s in WARNED) else "PASSED"
    policy = cfg.signoff.policy.get(manifest["run"]["label"])
    return {
        "result": result,
        "configuration": configuration(cfg, manifest),
        "passedTests": [t for s in PASSED for t in tests.get(s, [])],
        "warnedTests": [t for s in WARNED for t in tests.get(s, [])],
        "failedTests": [t for s in FAILED for t in tests.get(s, [])],
        "relcheck": {  # consumers of the test-result predicate ignore fields they do not know
            "release": manifest["release_id"],
            "product": manifest["product"],
            "version": manifest["release_version"],
            "run": manifest["run"]["label"],
            "finished": manifest["run"]["finished"],
            "verdict": manifest["verdict"],
            "resultReasons": reasons,
            "testsByStatus": {s: tests[s] for s in sorted(tests)},
            "items": [{"item": f"{i['section']} :: {i['item']}", "status": i["status"]} for i in items],
            "results": [
                {"name": "manifest.json", "digest": {"sha256": manifest_sha}},
                {"name": "evidence.json", "digest": {"sha256": evidence_sha}},
            ],
            "waivers": listed,
            "signoffPolicy": {
                "roles": {role: namespace(role) for role in policy.roles},
                "required": policy.required,
            }
            if policy
            else None,
        },
    }


def statement(cfg: Config, run_dir: Path) -> dict:
    """The run's Statement; refused for a run that does not verify or is not a complete run of its phases."""
    check = verify_report(cfg, run_dir)
    if check.integrity:
        raise signatures.SigningError(f"will not attest a report that does not verify: {check.integrity[0]}")
    manifest = check.manifest
    if manifest["run"].get("partial"):
        raise signatures.SigningError(f"will not attest a partial run ({manifest['run']['partial'][0]})")
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(cfg, manifest),
        "predicateType": TEST_RESULT,
        "predicate": predicate(
            cfg, manifest, sha256_file(run_dir / "manifest.json"), sha256_file(run_dir / "evidence.json")
        ),
    }


def payload_of(found: dict) -> bytes:
    return json.dumps(found, indent=2, sort_keys=True).encode() + b"\n"


def read_envelope(path: Path) -> Envelope:
    if not path.is_file():
        raise signatures.SigningError(f"no statement at {path}")
    try:
        return Envelope.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise signatures.SigningError(f"{path.name} is not a DSSE envelope ({type(exc).__name__}: {exc})") from None


def write(cfg: Config, report: Path, role: str = "", key: Path | None = None) -> Path:
    """Write the run's statement beside its report (kept as it is when it has not changed), and sign it as a role."""
    run_dir = run_dir_of(report)
    path = run_dir / FILE
    payload = payload_of(statement(cfg, run_dir))
    envelope = read_envelope(path) if path.is_file() else Envelope(payload, PAYLOAD_TYPE, {})
    if envelope.payload != payload:
        if envelope.signatures:
            raise signatures.SigningError(
                f"{path} is signed over another statement (the run, its config or its waivers changed since): "
                "remove it to attest anew"
            )
        envelope = Envelope(payload, PAYLOAD_TYPE, {})
    if role and key:
        principal = principal_for(cfg, role, key)
        armored = signatures.sign(envelope.pae(), key, namespace(role))
        keyid = f"{namespace(role)}/{principal}"
        envelope.signatures[keyid] = Signature(keyid, signatures.dearmor(armored).hex())
    write_atomic(path, json.dumps(envelope.to_dict(), indent=2) + "\n")
    return path


def principal_for(cfg: Config, role: str, key: Path) -> str:
    if role not in cfg.signoff.roles:
        raise signatures.SigningError(f"unknown role {role!r} (signoff.roles: {', '.join(cfg.signoff.roles)})")
    public = signatures.public_key(key)
    allowed = signers(cfg)
    principals = [p for p in cfg.signoff.roles[role] if allowed.allows(p, public, namespace(role))]
    if not principals:
        raise signatures.SigningError(f"this key is not allowed for {role}")
    return principals[0]


@dataclass
class StatementCheck:
    statement: dict = field(default_factory=dict)
    signed: list[tuple[str, str, str]] = field(default_factory=list)  # role, principal, fingerprint
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def role_of(cfg: Config, ns: str) -> str:
    return next((role for role in cfg.signoff.roles if namespace(role) == ns), "")


def check_signatures(cfg: Config, envelope: Envelope, check: StatementCheck) -> None:
    allowed = signers(cfg)
    for keyid, signature in envelope.signatures.items():
        ns, _, principal = keyid.partition("/")
        role = role_of(cfg, ns)
        if not role or principal not in cfg.signoff.roles[role]:
            check.problems.append(f"signature {keyid}: {principal} is not a principal of a role with namespace {ns}")
            continue
        verdict = signatures.verify(
            envelope.pae(), signatures.armor(bytes.fromhex(signature.signature)), allowed, principal, ns
        )
        if verdict.ok:
            check.signed.append((role, principal, verdict.fingerprint))
        else:
            check.problems.append(f"{role} ({principal}): {verdict.problem}")


def check_policy(cfg: Config, label: str, check: StatementCheck) -> None:
    policy = cfg.signoff.policy.get(label)
    if policy is None:
        check.problems.append(f"not verified: no signoff.policy.{label} says which roles must sign this run")
        return
    signed = {role for role, _, _ in check.signed if role in policy.roles}
    if len(signed) < policy.required:
        check.problems.append(
            f"signed by {len(signed)} of the {policy.required} required roles of {', '.join(policy.roles)}"
            + (f" ({', '.join(sorted(signed))})" if signed else "")
        )


def shown(digest) -> str:
    return ", ".join(f"{k}:{v}" for k, v in digest.items()) if isinstance(digest, dict) else repr(digest)


def check_subjects(cfg: Config, found: dict, check: StatementCheck) -> None:
    """The subjects are this release's commit, tree, artifacts and migrations as they are now."""
    release = found["predicate"].get("relcheck", {}).get("release")
    if release != cfg.release.release_id:
        check.problems.append(f"the statement is for {release}, not {cfg.release.release_id} (replayed?)")
    tested = tested_tree(cfg)
    now = {"release_sha": tested.get("commit", ""), "release_ref": cfg.release.git_ref, "tested_tree": tested}
    try:
        expected = {s["name"]: s["digest"] for s in subjects(cfg, now)}
    except signatures.SigningError as exc:
        check.problems.append(f"cannot recompute the subjects: {exc}")
        return
    stated = {s.get("name"): s.get("digest") for s in found.get("subject", [])}
    for name in sorted(set(expected) | set(stated)):
        if name not in stated:
            check.problems.append(f"{name} is not a subject of the statement")
        elif name not in expected:
            check.problems.append(f"subject {name} is not in this release")
        elif stated[name] != expected[name]:
            check.problems.append(
                f"subject {name}: digest {shown(stated[name])} is not the file's {shown(expected[name])}"
            )


def check_run(cfg: Config, path: Path, label: str, stated: dict, check: StatementCheck) -> None:
    """The run the statement is about — beside it, else the release's latest run of that label — is intact (its
    report, manifest and evidence agree, as `relcheck verify` checks) and is the run whose files it digests."""
    run_dir = path.parent if path.with_name("manifest.json").is_file() else records.run_dir(cfg, label)
    if not (run_dir / "manifest.json").is_file():
        check.problems.append(f"no run {label} at {run_dir}: the statement's manifest and evidence cannot be compared")
        return
    check.problems += verify_report(cfg, run_dir).integrity
    for name in ("manifest.json", "evidence.json"):
        actual = run_dir / name
        if not actual.is_file():
            continue  # named by the integrity check above
        if stated.get(name) != {"sha256": sha256_file(actual)}:
            check.problems.append(f"the statement is of another run than {actual} (an earlier one?)")


def verify(cfg: Config, path: Path, today: date | None = None) -> StatementCheck:
    """The envelope's signatures (each role in its namespace, by an allowed key, enough roles for the policy), the
    subjects against the files, the release, and the waivers still valid today."""
    check = StatementCheck()
    envelope = read_envelope(path)
    if envelope.payload_type != PAYLOAD_TYPE:
        check.problems.append(f"payloadType {envelope.payload_type!r} is not {PAYLOAD_TYPE}")
        return check
    try:
        found = json.loads(envelope.payload)
        facts = found["predicate"]["relcheck"]
        label, listed, stated = facts["run"], list(facts["waivers"]), facts["results"]
        stated = {r["name"]: r["digest"] for r in stated}
        if not isinstance(found["predicate"]["result"], str) or not all(isinstance(x, dict) for x in found["subject"]):
            raise TypeError("result or subject of the wrong type")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        check.problems.append(f"the payload is not a relcheck statement ({type(exc).__name__}: {exc})")
        return check
    check.statement = found
    if found.get("_type") != STATEMENT_TYPE or found.get("predicateType") != TEST_RESULT:
        check.problems.append("not an in-toto Statement v1 with the test-result predicate")
    check_run(cfg, path, label, stated, check)
    check_signatures(cfg, envelope, check)
    check_policy(cfg, label, check)
    check_subjects(cfg, found, check)
    on = (today or date.today()).isoformat()
    check.problems += [
        f"waiver {w['id']} expired on {w['expires']}" for w in listed if w["expires"] and w["expires"] < on
    ]
    if found["predicate"].get("result") == "FAILED":
        reasons = found["predicate"]["relcheck"].get("resultReasons") or ["no reason recorded"]
        check.problems.append(f"the statement's result is FAILED ({'; '.join(reasons[:3])})")
    return check
