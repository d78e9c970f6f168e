"""Config, checklist mapping, target lifecycle and bad-input handling."""

import ast
import json
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from conftest import REPO
from relcheck.core import checklist, config, secrets
from relcheck.core.errors import TargetError
from relcheck.target.embedded import EmbeddedRuntime


# --- checklist -----------------------------------------------------------------------------------------------
def test_the_seed_checklist_has_all_items():
    items = checklist.load().items
    assert len(items) == 100
    kinds = {kind: sum(1 for i in items if i.kind == kind) for kind in ("check", "trigger", "contact")}
    assert kinds == {"check": 85, "trigger": 5, "contact": 10}
    assert checklist.load().find("Rollback Triggers", "Critical service failure").kind == "trigger"
    assert checklist.load().find("Technical Team", "Database Admin").kind == "contact"


def test_ambiguous_or_unknown_sections_are_named():
    with pytest.raises(checklist.ChecklistError, match="ambiguous"):
        checklist.load().resolve_section("Documentation")
    assert checklist.load().find("Post-Release Tasks / Documentation", "Update runbooks")
    with pytest.raises(checklist.ChecklistError, match="no item 'Ship it'"):
        checklist.load().find("Code Quality", "Ship it")


def test_checklist_json_lists_every_item_with_its_checks():
    result = subprocess.run(
        [sys.executable, "-m", "relcheck.cli", "checklist", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = json.loads(result.stdout)
    assert len(rows) == 100 and set(rows[0]) == {"section", "item", "kind", "phases", "tests"}
    by_item = {(r["section"].split(" / ")[-1], r["item"]): r for r in rows}
    health = by_item[("Post-Deployment", "Run health checks")]
    assert health["tests"] == ["checks/test_post_deploy.py::test_health_checks[post_deploy]"]
    assert health["phases"] == ["post_deploy"]
    assert by_item[("Post-Rollback", "Run health checks")]["tests"] == [
        "checks/test_post_deploy.py::test_health_checks[post_rollback]"
    ]
    assert by_item[("Code Quality", "All tests passing")]["phases"] == ["code_quality", "pre_release"]


def test_phase_markers_select_their_checks(tmp_path):
    def collect(expression):
        out = subprocess.run(
            [sys.executable, "-m", "pytest", str(REPO / "checks"), "--collect-only", "-q", "-m", expression],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        return {line.split("::")[0] for line in out.splitlines() if "::" in line}

    phases = ("pre_release", "security", "post_deploy", "post_rollback")
    with ThreadPoolExecutor() as pool:
        selected = dict(zip(phases, pool.map(collect, phases), strict=True))
    assert "checks/test_code_quality.py" in selected["pre_release"]
    assert "checks/test_post_deploy.py" not in selected["pre_release"]
    assert selected["post_deploy"] == {
        "checks/test_post_deploy.py",
        "checks/test_rollback_triggers.py",
        "checks/test_security.py",
    }
    assert "checks/test_post_rollback.py" in selected["post_rollback"]
    assert selected["security"] == {"checks/test_security.py"}


# Checks only record evidence and assert: judgement lives in relcheck/probes, side effects in fixtures.
SENDING = {"deliver", "send_webhook"}  # relcheck.probes.notify's senders


def check_module_breaches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    breaches = [
        f"helper {node.name}()"
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("test_")
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("relcheck.ops"):
            breaches.append(f"imports {node.module}")
        elif isinstance(node, ast.Import):
            breaches += [f"imports {a.name}" for a in node.names if a.name.startswith("relcheck.ops")]
        if isinstance(node, ast.ImportFrom):
            breaches += [f"imports {a.name}" for a in node.names if a.name in SENDING]
        elif isinstance(node, ast.Attribute) and node.attr in SENDING:
            breaches.append(f"sends with {node.attr}()")
    return breaches


def test_checks_only_record_evidence_and_assert():
    breaches = {p.name: b for p in sorted((REPO / "checks").glob("*.py")) if (b := check_module_breaches(p))}
    assert not breaches, f"checks with helpers or side effects (move them to relcheck/probes or fixtures): {breaches}"


def test_the_guard_finds_a_helper_an_ops_import_and_a_notice(tmp_path):
    check = tmp_path / "test_x.py"
    check.write_text(
        "from relcheck.ops.deploy import Host\nfrom relcheck.probes import notify\n"
        "def judge(x):\n    return x\n"
        "def test_x(c, evidence):\n    notify.deliver(c, 'released', [], evidence)\n"
    )
    assert check_module_breaches(check) == ["helper judge()", "imports relcheck.ops.deploy", "sends with deliver()"]


# --- config --------------------------------------------------------------------------------------------------
def write(tmp_path, text):
    path = tmp_path / "relcheck.toml"
    path.write_text(text)
    return path


BASE = (REPO / "relcheck.toml").read_text()


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda t: t.replace('mode = "embedded"', 'mode = "embedded"\nbse_url = "http://x"'),
            "relcheck.toml: target.bse_url: unknown key",
        ),
        (
            lambda t: t.replace("startup_timeout_s = 30", 'startup_timeout_s = "soon"'),
            "relcheck.toml: embedded.startup_timeout_s: Input should be a valid number",
        ),
        (lambda t: t.replace('mode = "embedded"', 'mode = "staging"'), "relcheck.toml: target.mode: Input should be"),
        (
            lambda t: t.replace('mode = "embedded"', 'mode = "remote"'),
            "relcheck.toml: target: base_url: required when mode is 'remote'",
        ),
        (
            lambda t: t.replace('product = "kundli-service"\n', ""),
            "relcheck.toml: release.product: required key is missing",
        ),
        (
            lambda t: t + '\n[target.auth]\ntokens = { admin = "env:NO_SUCH_VARIABLE_X" }\n',
            "relcheck.toml: target.auth.tokens.admin: environment variable NO_SUCH_VARIABLE_X is not set",
        ),
        (lambda t: t + "\n[[[broken", "relcheck.toml: not valid TOML"),
        (
            lambda t: t.replace('"Development Team Lead"]\nrequired', '"Chief Vibes Officer"]\nrequired'),
            "relcheck.toml: signoff: policy.pre_release: Chief Vibes Officer not in signoff.roles",
        ),
        (
            lambda t: t.replace("required = 2 ", "required = 4 "),
            "relcheck.toml: signoff: policy.pre_release: required 4 of only 3 roles",
        ),
        (
            lambda t: t + '\n[quality.api]\nchecks = ["not_a_server_eror"]\n',
            "relcheck.toml: quality.api.checks: not a Schemathesis check: not_a_server_eror (one of not_a_server_error",
        ),
    ],
)
def test_bad_config_names_key_and_problem(tmp_path, edit, message):
    path = write(tmp_path, edit(BASE))
    with pytest.raises(config.ConfigError) as error:
        config.load(path)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_bad_config_lists_every_problem_one_line_each(tmp_path):
    edited = BASE.replace('mode = "embedded"', 'mode = "embedded"\nbse_url = "x"').replace('version = "1.1.0"\n', "")
    with pytest.raises(config.ConfigError) as error:
        config.load(write(tmp_path, edited))
    assert str(error.value).splitlines() == [
        "relcheck.toml: release.version: required key is missing",
        "relcheck.toml: target.bse_url: unknown key",
    ]


def test_missing_config_file(tmp_path):
    with pytest.raises(config.ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "edit, message",
    [
        (None, "config file not found"),
        (lambda t: t.replace('mode = "embedded"', 'mode = "embedded"\nbse_url = "x"'), "target.bse_url: unknown key"),
    ],
)
def test_a_bad_config_stops_the_run_with_one_line(tmp_path, edit, message):
    path = write(tmp_path, edit(BASE)) if edit else tmp_path / "missing.toml"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "checks"), "--relcheck-config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert result.returncode == 4 and len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.stderr + result.stdout
    cli = subprocess.run(
        [sys.executable, "-m", "relcheck.cli", "--config", str(path), "checklist"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 2 and cli.stderr.count("\n") == 1 and message in cli.stderr
    assert time.monotonic() - started < 30


def test_secrets_from_the_environment_are_masked(monkeypatch):
    monkeypatch.setenv("RELCHECK_SECRET_X", "s3cr3t-value-123")
    assert secrets.resolve("env:RELCHECK_SECRET_X") == "s3cr3t-value-123"
    assert secrets.redact("token s3cr3t-value-123 used") == "token *** used"
    assert secrets.redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert secrets.redact("Authorization: Bearer abcdefghijkl") == "Authorization: Bearer ***"


# --- target lifecycle and bad targets ---------------------------------------------------------------------
def embedded_processes(workdir):
    return [p for p in psutil.process_iter(["cmdline"]) if str(workdir) in " ".join(p.info["cmdline"] or [])]


def test_embedded_target_starts_and_stops_cleanly(default_config):
    runtime = EmbeddedRuntime(default_config, faults={})
    target = runtime.start()
    try:
        assert target.health().json["status"] == "ok"
        assert target.http.get("/v1/admin/audit", role="admin").status == 200
        assert target.http.get("/v1/admin/audit", role="viewer").status == 403
        service_pid = target.service.pid
        assert embedded_processes(runtime.workdir)
    finally:
        runtime.stop()
    assert not psutil.pid_exists(service_pid) or psutil.Process(service_pid).status() == psutil.STATUS_ZOMBIE
    assert not runtime.workdir.exists()
    assert not embedded_processes(runtime.workdir)


def test_a_failing_start_stops_what_it_started(default_config, tmp_path):
    broken = default_config.model_copy(
        update={
            "embedded": default_config.embedded.model_copy(
                update={"migrate": ["{python}", "-c", "import sys; sys.exit('migration exploded')"]}
            )
        }
    )
    runtime = EmbeddedRuntime(broken, faults={})
    with pytest.raises(TargetError, match="migrate failed \\(exit 1\\): migration exploded"):
        runtime.start()
    assert not runtime.workdir.exists() and not embedded_processes(runtime.workdir)


def test_the_embedded_runtime_refuses_a_config_without_an_embedded_section(tmp_path):
    """`relcheck rehearse` on a remote config: one line up front, not an AttributeError halfway through."""
    remote = '[release]\nproduct = "svc"\nversion = "1.0.0"\n[target]\nmode = "remote"\nbase_url = "http://h"\n'
    remote += 'source = "."\n'
    with pytest.raises(TargetError, match=r"^embedded: section required for the embedded target"):
        EmbeddedRuntime(config.load(write(tmp_path, remote)), faults={})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_remote_target_gives_one_line(bench):
    url = f"http://127.0.0.1:{closed_port()}"
    path = bench.config({"target": {"mode": "remote", "base_url": url, "service": {"manager": "none"}}})
    checked = bench.run(path, "-m", "post_deploy")
    assert checked.seconds < 60
    reason = checked.reason("test_health_checks[post_deploy]")
    assert reason == f"health check failed: GET {url}/health -> unreachable (connection refused)"
    assert checked.verdict == "ROLLBACK" and checked.returncode == 3  # a critical service failure
    assert checked.status("test_access_controls") == "not verified"  # the other checks could not gather anything


@pytest.fixture
def silent_server():
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_target_that_never_answers_times_out(bench, silent_server):
    path = bench.config(
        {
            "target": {
                "mode": "remote",
                "base_url": silent_server,
                "request_timeout_s": 1,
                "service": {"manager": "none"},
            }
        }
    )
    checked = bench.run(path, "-m", "post_deploy")
    assert checked.seconds < 60
    assert (
        checked.reason("test_health_checks[post_deploy]")
        == f"health check failed: GET {silent_server}/health -> no answer within 1s"
    )


def test_database_authentication_failure_gives_one_line(bench, healthy):
    wrong = healthy.dsn.replace("kundli:", "kundli:wrong-", 1)
    bench.env["RELCHECK_WRONG_DSN"] = wrong
    path = bench.config({"target": {"dsn": "env:RELCHECK_WRONG_DSN"}}, target=healthy)
    assert "env:RELCHECK_WRONG_DSN" in path.read_text()
    checked = bench.run(path, "-m", "post_deploy")
    reason = checked.reason("test_health_checks[post_deploy]")
    assert checked.status("test_health_checks[post_deploy]") == "not verified"  # relcheck's login, not the service
    assert "target database: authentication failed" in reason and "wrong-" not in checked.output
    assert "\n" not in reason
    assert checked.verdict == "BLOCKED" and checked.returncode == 1 and not checked.manifest["decision"]["fired"]


def test_the_config_reference_is_current():
    """docs/config-reference.md is `relcheck config --reference`: regenerate it when a model changes."""
    from relcheck.core import reference

    assert (REPO / "docs" / "config-reference.md").read_text() == reference.markdown()


def test_a_config_needs_only_the_sections_its_phases_use(tmp_path):
    """[release] + [target] + [performance] is enough for the performance phase (quality, security: not verified)."""
    minimal = tmp_path / "relcheck.toml"
    minimal.write_text(
        '[release]\nproduct = "svc"\nversion = "1.0.0"\n'
        '[target]\nmode = "remote"\nbase_url = "http://127.0.0.1:9"\nsource = "."\n'
        '[performance.load]\nlocustfile = "load.py"\n[performance.stress]\nlocustfile = "stress.py"\n'
    )
    cfg = config.load(minimal)
    assert cfg.quality.tests is None and cfg.security.bandit is None and cfg.performance is not None


def test_an_unknown_placeholder_lists_the_valid_ones():
    from relcheck.core.errors import TargetError
    from relcheck.core.templates import fill

    with pytest.raises(
        TargetError, match=r"unknown placeholder \{pyhton\} in '\{pyhton\}' \(valid: \{dsn\} \{python\}\)"
    ):
        fill("{pyhton}", {"python": "/usr/bin/python3", "dsn": "x"}, "deploy.migrate")


def test_the_deployed_tree_is_resolved_here_but_not_on_the_service_host(tmp_path):
    base = '[release]\nproduct = "svc"\nversion = "1.0.0"\n[target]\nmode = "remote"\nbase_url = "http://h"\n'
    base += 'source = "."\napp_dir = "backend"\n[deploy]\ncheckout = "srv/app"\n'
    local = config.load(write(tmp_path, base))
    assert local.deployed_tree == tmp_path / "srv" / "app" / "backend"
    remote = config.load(write(tmp_path, base + 'command_prefix = ["ssh", "app1"]\n'))
    assert remote.deployed_tree == Path("srv/app/backend")


def test_the_readme_architecture_names_every_module_of_the_library():
    text = (REPO / "README.md").read_text()
    tree = text[text.index("## Architecture") :]
    tree = tree[: tree.index("Each concept has one owner")]
    modules = {
        path.stem if path.name != "__init__.py" else path.parent.name
        for package in ("core", "signing", "target", "probes", "run", "ops", "discovery")
        for path in (REPO / "relcheck" / package).rglob("*.py")
        if path.name != "__init__.py" or path.parent.name != package
    }
    unnamed = sorted(m for m in modules if not re.search(rf"\b{m}\b", tree))
    assert not unnamed, f"modules the README's architecture does not name: {unnamed}"
