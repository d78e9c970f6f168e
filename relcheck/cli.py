"""The relcheck command: run a phase, show the checklist mapping, sign and verify reports, deploy and roll back."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from . import checklist as checklist_module
from .config import REPO, ConfigError, load
from .errors import RelcheckError


class Collector:
    """Collect-only plugin: which checks prove which items, with their phase markers."""

    def __init__(self) -> None:
        self.tests: dict[str, list[tuple[str, list[str]]]] = {}

    def pytest_collection_finish(self, session):
        from .plugin import ITEMS_KEY, PHASES
        for test in session.items:
            phases = sorted({m.name for m in test.iter_markers() if m.name in PHASES})
            for item in test.stash.get(ITEMS_KEY, []):
                self.tests.setdefault(item.key, []).append((test.nodeid, phases))


def mapping(config_path: str | None) -> list[dict]:
    cfg = load(config_path)
    checklist = checklist_module.load(cfg.checklist and str(cfg.resolve(cfg.checklist)) or None)
    collector = Collector()
    args = ["--collect-only", "-p", "no:terminal", str(REPO / "checks")]
    if config_path:
        args += ["--relcheck-config", str(config_path)]
    cwd = os.getcwd()
    try:
        os.chdir(REPO)
        code = pytest.main(args, plugins=[collector])
    finally:
        os.chdir(cwd)
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise RelcheckError(f"collecting the checks failed (pytest exit status {int(code)})")
    return [{"section": item.section, "item": item.text, "kind": item.kind,
             "phases": sorted({p for _, phases in collector.tests.get(item.key, []) for p in phases}),
             "tests": [nodeid for nodeid, _ in collector.tests.get(item.key, [])]}
            for item in checklist.items]


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
    """pytest -m PHASE over the checklist, from the repository root."""
    pytest_args = [str(REPO / "checks"), "-m", args.phase, *args.pytest_args]
    if args.config:
        pytest_args += ["--relcheck-config", str(Path(args.config).resolve())]
    os.chdir(REPO)
    return int(pytest.main(pytest_args))


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
    args = parser.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)      # `relcheck checklist | head` ends quietly
    try:
        return args.func(args)
    except (ConfigError, RelcheckError) as exc:
        print(f"relcheck: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
