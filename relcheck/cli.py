"""The relcheck command: run a phase, show the checklist mapping, sign and verify reports, deploy and roll back."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

import pytest

from relcheck.core import checklist as checklist_module
from relcheck.core.config import LOOPBACK, ConfigError, load
from relcheck.core.errors import RelcheckError
from relcheck.run.runner import checklist_args


class Collector:
    """Collect-only plugin: which checks prove which items, with their phase markers."""

    def __init__(self) -> None:
        self.tests: dict[str, list[tuple[str, list[str]]]] = {}

    def pytest_collection_finish(self, session):
        from relcheck.run.phases import PHASES
        from relcheck.run.plugin import ITEMS_KEY

        for test in session.items:
            phases = sorted({m.name for m in test.iter_markers() if m.name in PHASES})
            for item in test.stash.get(ITEMS_KEY, []):
                self.tests.setdefault(item.key, []).append((test.nodeid, phases))


def mapping(config_path: str | None) -> list[dict]:
    cfg = load(config_path)
    checklist = checklist_module.load(cfg.checklist and str(cfg.resolve(cfg.checklist)) or None)
    collector = Collector()
    code = pytest.main(["--collect-only", "-p", "no:terminal", *checklist_args(config_path)], plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise RelcheckError(f"collecting the checks failed (pytest exit status {int(code)})")
    return [
        {
            "section": item.section,
            "item": item.text,
            "kind": item.kind,
            "phases": sorted({p for _, phases in collector.tests.get(item.key, []) for p in phases}),
            "tests": [nodeid for nodeid, _ in collector.tests.get(item.key, [])],
        }
        for item in checklist.items
    ]


def cmd_checklist(args) -> int:
    rows = mapping(args.config)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    section = None
    for row in rows:
        if row["section"] != section:
            section = row["section"]
            print(f"\n{section}")
        tests = ", ".join(t.split("::", 1)[1] for t in row["tests"]) if row["tests"] else "NOT COVERED"
        print(f"  {row['item']:<40} {tests}")
    covered = sum(1 for r in rows if r["tests"])
    print(f"\n{covered} of {len(rows)} items covered by a check")
    return 0


def cmd_run(args) -> int:
    """pytest -m PHASE over the checklist shipped in relcheck's package."""
    return int(pytest.main([*checklist_args(args.config, args.phase), *args.pytest_args]))


def cmd_rehearse(args) -> int:
    """Deploy and roll back the release on the embedded target, with the checks in between."""
    import tempfile

    from relcheck.ops.rehearsal import rehearse

    cfg = load(args.config)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="relcheck-rehearsal-"))
    result = rehearse(cfg, workdir)
    print(f"\nrehearsal {'PASSED' if result.ok else 'FAILED'} (rows lost: {result.rows_lost}); record: {result.report}")
    for phase in result.phases:
        print(f"  {'ok ' if phase.ok else 'FAIL'} {phase.name:32} {phase.seconds:7.1f} s  {phase.detail}")
    return 0 if result.ok else 1


def procedures_for(cfg):
    """The deploy/rollback procedures of a real (remote) target; scratch databases a crashed run left are dropped."""
    from relcheck.core import records
    from relcheck.core.templates import fill
    from relcheck.ops.deploy import Host, Procedures
    from relcheck.target import scratch
    from relcheck.target.postgres import client_tool
    from relcheck.target.target import connect_remote

    if cfg.target.mode != "remote":
        raise RelcheckError(
            "deploy and rollback run against a remote target; for the embedded one use `relcheck rehearse`"
        )
    target = connect_remote(cfg)
    for name in scratch.sweep(target) if target.dsn else []:
        print(f"dropped {name}, a scratch database a crashed relcheck run left behind", file=sys.stderr)
    bin_dir = Path(cfg.deploy.pg_bin_dir) if cfg.deploy.pg_bin_dir else None
    values = scratch.DsnParts.of(target.dsn).placeholders("dsn") if target.dsn else {}
    host = Host(
        cfg.deployed_tree,
        cfg.deploy.command_prefix,
        {k: fill(v, values, "deploy.env") for k, v in cfg.deploy.env.items()},
    )
    return Procedures(
        cfg, target, host, client_tool("pg_dump", bin_dir), client_tool("pg_restore", bin_dir), records.backups_dir(cfg)
    )


def refuse_unrunnable(cfg, procedures, kind: str, ref: str) -> bool:
    """Print the steps that cannot run here; True when there are any (the procedure must not start)."""
    from relcheck.core.errors import ToolError
    from relcheck.ops.deploy import plan_problems
    from relcheck.target.git import GitRepo

    try:
        repo = GitRepo(cfg.repository)
    except ToolError:
        repo = None
    problems = plan_problems(cfg, procedures.target, repo, kind, ref)
    if repo:
        repo.close()
    for problem in problems:
        print(f"relcheck: cannot {kind}: {problem}", file=sys.stderr)
    return bool(problems)


def cmd_deploy(args) -> int:
    from relcheck.core import records
    from relcheck.ops.deploy import Record, rollback_hint, run

    cfg = load(args.config)
    release = cfg.release
    procedures = procedures_for(cfg)
    record = Record("deploy", release.product, release.version, args.ref or release.git_ref)
    if refuse_unrunnable(cfg, procedures, "deploy", record.ref):
        if args.dry_run:
            run(procedures.deploy(record.ref, record), record, dry_run=True)
        return 1
    run(procedures.deploy(record.ref, record), record, dry_run=args.dry_run, host=procedures.host)
    if args.dry_run:
        return 0
    path = record.save(records.deploy_record_path(cfg))
    if not record.ok:
        print(f"deploy stopped at {record.failed_step}. Roll back with: {rollback_hint(cfg, path)}", file=sys.stderr)
        return 1
    print(f"deployed {record.ref}; record {path}. Next: pytest -m post_deploy")
    return 0


def cmd_rollback(args) -> int:
    from dataclasses import asdict

    from relcheck.core import records
    from relcheck.ops import incident
    from relcheck.ops.deploy import Record, run
    from relcheck.probes.rollbackplan import refuse_code_only
    from relcheck.run.phases import run_phases

    cfg = load(args.config)
    release = cfg.release
    deployed = records.read(Path(args.record) if args.record else records.deploy_record_path(cfg))
    if not deployed:
        raise RelcheckError("no deploy record to roll back (see --record)")
    if args.code_only:  # only what the rollback plan's rehearsal found safe
        choice = records.rollback_choice_path(cfg)
        runs = [m for m in records.manifests(cfg) if "pre_deploy" in run_phases(m["run"]["markexpr"])]
        refused = refuse_code_only(records.read(choice), str(choice), release, runs)
        if refused:
            raise RelcheckError(f"refusing the code-only rollback: {refused}")
    procedures = procedures_for(cfg)
    record = Record("rollback", release.product, release.previous_version, args.ref or release.previous_git_ref)
    if args.code_only:
        steps = procedures.code_only_rollback(record.ref)
    else:
        steps = procedures.rollback(record.ref, deployed, record, accept_data_loss=args.accept_data_loss)
    if refuse_unrunnable(cfg, procedures, "rollback", record.ref):
        if args.dry_run:
            run(steps, record, dry_run=True)
        return 1
    run(steps, record, dry_run=args.dry_run, host=procedures.host)
    if args.dry_run:
        return 0
    record.save(records.rollback_record_path(cfg))
    path = incident.write_for(cfg, deployed, asdict(record), "manual rollback (relcheck rollback)")
    print(
        f"rolled back to {record.ref}: {'ok' if record.ok else 'FAILED at ' + record.failed_step}; "
        f"incident record {path}. Next: pytest -m post_rollback"
    )
    if record.safety_dump:
        print(f"the data as it was before the restore: {record.safety_dump['path']}")
    return 0 if record.ok else 1


def cmd_sign(args) -> int:
    from relcheck.run.signoff import sign

    signed = sign(load(args.config), Path(args.report), args.role, Path(args.key))
    print(f"signed {args.report} as {signed.role}: {signed.principal} ({signed.fingerprint}) at {signed.signed_at}")
    return 0


def cmd_monitor(args) -> int:
    from relcheck.core import durations
    from relcheck.core.config import config_path
    from relcheck.ops import monitoring

    config = config_path(args.config).resolve()
    load(config)  # a bad config stops here, with one line
    try:
        duration, every = durations.seconds(args.duration), durations.seconds(args.every)
        return monitoring.watch(config, duration, every, most_runs=args.runs)
    except KeyboardInterrupt:
        print("relcheck monitor: stopped (Ctrl-C); the interrupted run's report is written", file=sys.stderr)
        return 130


def cmd_audit(args) -> int:
    """The dependency audit alone: the files (or the config's), against the given mirrors (or the config's)."""
    from relcheck.core.config import Dependencies
    from relcheck.probes import dependencies
    from relcheck.probes.audit import engine, formats

    files, advisories = [Path(f) for f in args.files], [Path(a) for a in args.advisories]
    if files and advisories:  # standalone: no config needed, the defaults of security.dependencies
        deps, product, python = Dependencies(pip_audit="off"), "", sys.executable
    else:
        cfg = load(args.config)
        deps, product, python = cfg.security.dependencies, cfg.release.product, cfg.python(cfg.deploy.python)
        files = files or [cfg.source / name for name in deps.requirements]
        advisories = advisories or [cfg.resolve(d) for d in deps.advisories]
    max_age = args.max_age_days if args.max_age_days is not None else deps.max_age_days
    found = engine.audit(
        files,
        advisories,
        max_age,
        args.pip_audit or deps.pip_audit,
        product=product,
        resolve=lambda pins: dependencies.resolve(pins.requirement_files, pins.pins, python),
    )
    print(formats.as_json(found) if args.json else formats.as_text(found))
    return formats.exit_status(found)


def cmd_statement(args) -> int:
    from relcheck.run import statement

    if bool(args.role) != bool(args.key):
        raise RelcheckError("--role and --key go together (sign the statement as a role)")
    path = statement.write(load(args.config), Path(args.report), args.role or "", Path(args.key) if args.key else None)
    print(f"{'signed' if args.role else 'wrote'} {path}" + (f" as {args.role}" if args.role else ""))
    return 0


def cmd_verify_statement(args) -> int:
    from relcheck.run import statement

    check = statement.verify(load(args.config), Path(args.statement))
    facts = check.statement.get("predicate", {}).get("relcheck", {})
    if facts:
        result = check.statement["predicate"]["result"]
        print(f"{facts['release']}, run {facts['run']} finished {facts['finished']}: {result}")
    for role, principal, fingerprint in check.signed:
        print(f"  signed  {role}: {principal} ({fingerprint})")
    for problem in check.problems:
        print(f"  PROBLEM: {problem}")
    print("verified" if check.ok else f"NOT verified: {len(check.problems)} problem(s)")
    return 0 if check.ok else 1


def cmd_verify(args) -> int:
    from relcheck.run.signoff import verify

    if args.statement:
        return cmd_verify_statement(args)
    if not args.report:
        raise RelcheckError("name a report (or --statement FILE)")
    check = verify(load(args.config), Path(args.report))
    manifest = check.manifest
    if manifest:
        print(
            f"{manifest['product']} {manifest['release_version']} ({manifest['release_id']}), "
            f"run {manifest['run']['label']} finished {manifest['run']['finished']}: {manifest['verdict']}"
        )
    for s in check.signoffs:
        print(f"  {'signed' if s.ok else 'INVALID'}  {s.role}: {s.principal} ({s.fingerprint or '-'}) {s.signed_at}")
    if not check.signoffs:
        print("  no signatures")
    for problem in check.problems:
        print(f"  PROBLEM: {problem}")
    print("verified" if check.ok else f"NOT verified: {len(check.problems)} problem(s)")
    return 0 if check.ok else 1


def cmd_attest(args) -> int:
    from relcheck.signing.attestations import attest

    path = attest(load(args.config), args.item, args.role, args.note, Path(args.key))
    print(f"attested {args.item} as {args.role}: {path}")
    return 0


def cmd_waive(args) -> int:
    from relcheck.signing.waivers import waive

    cfg = load(args.config)
    waiver = waive(
        cfg, args.id, args.finding or "", args.item or "", args.reason, args.role, args.expires, Path(args.key)
    )
    print(f"waiver {waiver.id} ({waiver.finding or waiver.item}) signed as {waiver.approver}, expires {waiver.expires}")
    return 0


def cmd_history(args) -> int:
    """DORA's delivery metrics over the releases in reports/ (printed), and their Prometheus textfile."""
    from relcheck.run import delivery

    reports = load(args.config).reports_dir
    if args.prometheus:
        delivery.write_prometheus(reports, Path(args.prometheus))
        print(f"wrote {args.prometheus}")
    if args.dora or not args.prometheus:
        print("\n".join(delivery.lines(delivery.dora(reports))))
    return 0


def cmd_init(args) -> int:
    """Probe a running service (and its tree and database) and write a config for it."""
    from relcheck.core.secrets import register_dsn
    from relcheck.discovery import init

    if args.dsn:
        register_dsn(args.dsn)
    print(
        init(
            args.base_url,
            Path(args.out),
            Path(args.source) if args.source else None,
            args.dsn or "",
            args.product or "",
            args.release_version or "",
            [*LOOPBACK, *args.allow_host],
            args.write_load,
            args.force,
        )
    )
    return 0


def cmd_config(args) -> int:
    """The config reference (generated from the models), or the loaded config's problems."""
    if args.reference:
        from relcheck.core import reference

        print(reference.markdown(), end="")
        return 0
    cfg = load(args.config)
    print(f"{cfg.path}: valid ({cfg.target.mode} target {cfg.target.base_url or cfg.source})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relcheck", description=__doc__)
    parser.add_argument("--config", help="config file (default: $RELCHECK_CONFIG or relcheck.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("checklist", help="every checklist item with the checks that prove it")
    listing.add_argument("--json", action="store_true", help="print [{section, item, kind, phases, tests}]")
    listing.set_defaults(func=cmd_checklist)
    run = sub.add_parser("run", help="run one phase of the checklist (pytest -m PHASE)")
    run.add_argument("phase", help="a phase marker or -m expression, e.g. pre_release, post_deploy")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="further pytest arguments")
    run.set_defaults(func=cmd_run)
    rehearse = sub.add_parser(
        "rehearse", help="deploy and roll back the release on the embedded target, with the checks in between"
    )
    rehearse.add_argument("--workdir", help="keep the rehearsal's reports here (default: a temporary directory)")
    rehearse.set_defaults(func=cmd_rehearse)
    deploy = sub.add_parser("deploy", help="run the deployment procedure on the configured (remote) target")
    deploy.add_argument("--ref", help="git ref to deploy (default: release.ref)")
    deploy.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    deploy.set_defaults(func=cmd_deploy)
    rollback = sub.add_parser("rollback", help="run the rollback procedure: restore the backup of the last deploy")
    rollback.add_argument("--record", help="the deploy record (default: the release's last deploy)")
    rollback.add_argument("--ref", help="git ref to go back to (default: release.previous_ref)")
    rollback.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    rollback.add_argument(
        "--accept-data-loss",
        action="store_true",
        help="restore even when writes made since the backup would be discarded (they are kept in a proven dump first)",
    )
    rollback.add_argument(
        "--code-only",
        action="store_true",
        help="only the previous release's code, schema and data left as they are; refused unless the rollback plan "
        "(pytest -m pre_deploy) found it safe",
    )
    rollback.set_defaults(func=cmd_rollback)
    sign = sub.add_parser("sign", help="sign a report's manifest as a release role (SSH key)")
    sign.add_argument("report", help="report.html of a run (or its directory)")
    sign.add_argument("--role", required=True, help="a role of signoff.roles, e.g. 'QA Team Lead'")
    sign.add_argument("--key", required=True, help="your SSH private key (ssh-keygen -Y sign)")
    sign.set_defaults(func=cmd_sign)
    monitor = sub.add_parser("monitor", help="re-run the monitoring phase on a schedule; exit 3 when a trigger fires")
    monitor.add_argument("--for", dest="duration", default="24h", help="how long to watch (e.g. 24h, 90m; default 24h)")
    monitor.add_argument("--every", default="5m", help="time between runs (default 5m)")
    monitor.add_argument("--runs", type=int, default=0, help="stop after this many runs (default: when --for ends)")
    monitor.set_defaults(func=cmd_monitor)
    audit = sub.add_parser(
        "audit", help="audit pinned dependencies against advisory mirrors (exit 0 clean, 1 vulnerable, 2 not audited)"
    )
    audit.add_argument("files", nargs="*", help="requirements files or lockfiles (default: the config's)")
    audit.add_argument("--advisories", nargs="+", default=[], metavar="PATH", help="PyPA checkout, OSV dir or all.zip")
    audit.add_argument("--max-age-days", type=float, help="older mirrors are stale (default 7, or the config's)")
    audit.add_argument("--pip-audit", choices=["auto", "off", "required"], help="also ask pip-audit online")
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.set_defaults(func=cmd_audit)
    statement = sub.add_parser(
        "statement", help="write a run's in-toto statement (DSSE) beside its report; sign it as a role (SSH key)"
    )
    statement.add_argument("report", help="report.html of a complete run (or its directory)")
    statement.add_argument("--role", help="sign it as this role of signoff.roles (namespace relcheck-release-<role>)")
    statement.add_argument("--key", help="your SSH private key")
    statement.set_defaults(func=cmd_statement)
    verify = sub.add_parser("verify", help="check a report against its manifest, evidence and signatures")
    verify.add_argument("report", nargs="?", help="report.html of a run (or its directory)")
    verify.add_argument("--statement", help="verify a statement.dsse.json instead: signatures, policy, subjects")
    verify.set_defaults(func=cmd_verify)
    attest = sub.add_parser("attest", help="attest an item only a person can confirm (signed statement)")
    attest.add_argument("--item", required=True, help="'<section> :: <item>', e.g. 'Post-Rollback :: Plan resolution'")
    attest.add_argument("--role", required=True)
    attest.add_argument("--note", required=True, help="what was done and where to find it")
    attest.add_argument("--key", required=True)
    attest.set_defaults(func=cmd_attest)
    waive = sub.add_parser("waive", help="accept a finding or an item until a date (signed by the approver)")
    target = waive.add_mutually_exclusive_group(required=True)
    target.add_argument("--finding", help="a finding id or alias (PYSEC-..., CVE-..., bandit:B602:path)")
    target.add_argument("--item", help="'<section> :: <item>'")
    waive.add_argument("--id", required=True, help="the waiver's id, e.g. WVR-2026-004")
    waive.add_argument("--reason", required=True)
    waive.add_argument("--expires", required=True, help="YYYY-MM-DD")
    waive.add_argument("--role", required=True, help="the approving role")
    waive.add_argument("--key", required=True)
    waive.set_defaults(func=cmd_waive)
    history = sub.add_parser("history", help="delivery metrics (DORA) from the release record in reports/")
    history.add_argument(
        "--dora", action="store_true", help="print deployment frequency, change failure rate, recovery"
    )
    history.add_argument(
        "--prometheus", metavar="FILE", help="write them and each gate's last verdicts (textfile format)"
    )
    history.set_defaults(func=cmd_history)
    init = sub.add_parser("init", help="probe a running service and write a config for it (bounded, read-only)")
    init.add_argument("--base-url", required=True, help="the running service, e.g. http://127.0.0.1:8000")
    init.add_argument("--source", help="the service's source tree (its repository checkout)")
    init.add_argument("--dsn", help="its database, read in a read-only session (not written to the config)")
    init.add_argument("--out", default="relcheck.toml", help="the config to write (default: ./relcheck.toml)")
    init.add_argument("--product", help="the product's name (default: the OpenAPI title, else the tree's name)")
    init.add_argument("--release-version", help="the release being checked (picks the version source naming it)")
    init.add_argument("--allow-host", action="append", default=[], help="a non-loopback host init may probe")
    init.add_argument("--write-load", action="store_true", help="write Locust scenarios from the safe GET operations")
    init.add_argument("--force", action="store_true", help="overwrite --out")
    init.set_defaults(func=cmd_init)
    config = sub.add_parser("config", help="validate the config, or print the reference of every key")
    config.add_argument("--reference", action="store_true", help="every key with its type, default and meaning")
    config.set_defaults(func=cmd_config)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `relcheck checklist | head` ends quietly
    try:
        return args.func(args)
    except (ConfigError, RelcheckError) as exc:
        print(f"relcheck: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
