"""The dependency audit over a corpus built here in the real formats: a PyPA advisory-database clone (YAML), an OSV
JSON directory, OSV's all.zip, requirements files and each lockfile format. Every trap ends not audited or failed,
never clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from conftest import relcheck_cli
from relcheck.probes import dependencies
from relcheck.probes.audit import engine, formats, inputs
from relcheck.probes.audit.pipaudit import PipAudit
from relcheck.probes.dependencies import Resolution

NOW = datetime.now(timezone.utc)


def osv(vuln_id: str, package: str, events: list[dict], aliases=(), versions=(), **extra) -> dict:
    return {
        "schema_version": "1.6.0",
        "id": vuln_id,
        "modified": (NOW - timedelta(days=1)).isoformat(),
        "aliases": list(aliases),
        "summary": f"{vuln_id} in {package}",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "versions": list(versions),
            }
        ],
        **extra,
    }


def pypa_clone(root: Path, records: list[dict]) -> Path:
    """A git clone laid out like pypa/advisory-database: vulns/<package>/<id>.yaml, committed now."""
    for record in records:
        path = root / "vulns" / record["affected"][0]["package"]["name"] / f"{record['id']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(record))
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "advisories"], check=True)
    return root


def osv_dir(root: Path, records: list[dict], taken: datetime | None = NOW) -> Path:
    root.mkdir(parents=True)
    for record in records:
        (root / f"{record['id']}.json").write_text(json.dumps(record))
    if taken:
        (root / "snapshot.json").write_text(json.dumps({"taken": taken.isoformat()}))
    return root


def osv_zip(path: Path, records: list[dict]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return path


@pytest.fixture
def corpus(tmp_path) -> dict[str, Path]:
    pypa = pypa_clone(
        tmp_path / "advisory-database",
        [
            osv("PYSEC-2023-83", "starlette", [{"introduced": "0.13.5"}, {"fixed": "0.27.0"}], ["GHSA-v5gw-mw7f-84px"]),
            osv("PYSEC-2020-150", "uvicorn", [{"introduced": "0"}, {"fixed": "0.11.7"}]),
            osv("PYSEC-2022-1", "jinja2", [{"introduced": "0"}, {"fixed": "2.10.1"}], withdrawn="2023-01-01T00:00:00Z"),
        ],
    )
    json_dir = osv_dir(
        tmp_path / "osv",
        [
            osv("GHSA-v5gw-mw7f-84px", "starlette", [{"introduced": "0"}, {"fixed": "0.27.0"}], ["PYSEC-2023-83"]),
            osv("GHSA-2222-aaaa-bbbb", "django", [{"introduced": "4.0"}, {"last_affected": "4.2rc1"}]),
        ],
    )
    archive = osv_zip(
        tmp_path / "all.zip",
        [
            osv(
                "PYSEC-2019-1",
                "requests",
                [{"introduced": "2.0"}, {"fixed": "2.20.0"}, {"introduced": "2.25"}, {"fixed": "2.26"}],
            ),
            osv("PYSEC-2024-7", "flask", [], versions=["2.2.0rc1"]),
        ],
    )
    return {"pypa": pypa, "json": json_dir, "zip": archive, "tmp": tmp_path}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_full_mirror_finds_exactly_its_advisories_for_each_pin(corpus):
    requirements = write(
        corpus["tmp"] / "requirements.txt",
        "starlette==0.26.1\nuvicorn==0.11.5\njinja2==2.10\ndjango==4.2.0rc1\nrequests==2.25.1\n"
        "flask==2.2rc1\nrequests-toolbelt==1.0.0\n",
    )
    found = engine.audit([requirements], [corpus["pypa"], corpus["json"], corpus["zip"]], cache=corpus["tmp"] / "c")
    assert {(f.pin.name, f.id) for f in found.findings} == {
        ("starlette", "PYSEC-2023-83"),  # and its GHSA twin from the OSV directory, merged by alias
        ("uvicorn", "PYSEC-2020-150"),
        ("django", "GHSA-2222-aaaa-bbbb"),  # last_affected 4.2rc1 == 4.2.0rc1
        ("requests", "PYSEC-2019-1"),  # the second introduced/fixed pair
        ("flask", "PYSEC-2024-7"),  # versions list, PEP 440 equal
    }  # jinja2's record is withdrawn
    starlette = next(f for f in found.findings if f.pin.name == "starlette")
    assert starlette.aliases == ["GHSA-v5gw-mw7f-84px"] and starlette.fixed == ["0.27.0"]
    assert found.complete and not found.problems and formats.exit_status(found) == formats.VULNERABLE
    kinds = {s.kind: s.age_from for s in found.sources}
    assert kinds == {
        "PyPA checkout": "last commit of the clone",
        "OSV directory": "snapshot.json",
        "OSV archive": "newest record's modified",
    }


def test_the_distributions_pip_resolves_and_nobody_pins_are_audited_as_transitive(corpus):
    requirements = write(corpus["tmp"] / "requirements.txt", "starlette==0.26.1\nfastapi==0.1\n")
    resolved = Resolution(True, "pip resolved 3", {"starlette": "0.26.1", "fastapi": "0.1", "uvicorn": "0.11.5"})
    asked = []
    found = engine.audit([requirements], [corpus["pypa"]], resolve=lambda pins: asked.append(pins) or resolved)
    assert [p.name for p in asked[0].pins] == ["starlette", "fastapi"]
    assert found.transitive == [inputs.Pin("uvicorn", "0.11.5", engine.TRANSITIVE)]
    assert [(f.label, f.named) for f in found.findings] == [
        ("starlette==0.26.1 PYSEC-2023-83", "PYSEC-2023-83"),
        ("uvicorn==0.11.5 PYSEC-2020-150 (transitive)", "PYSEC-2020-150 in transitive uvicorn==0.11.5"),
    ]
    assert found.complete and found.resolution == "pip resolved 3"


def test_without_an_advisory_source_the_pins_are_not_resolved_for_an_audit_that_cannot_judge_them(corpus):
    """pip's resolution takes ~20 s on Kinto: with no source that counts and pip-audit off it is skipped, said so."""
    requirements = write(corpus["tmp"] / "requirements.txt", "starlette==0.26.1\n")
    asked = []
    found = engine.audit([requirements], [], resolve=lambda pins: asked.append(pins) or Resolution(True, "resolved"))
    assert asked == [] and found.transitive == []
    assert found.resolution == "not resolved: no advisory source counts and pip-audit is off, the audit is not verified"
    assert not found.complete and "no advisory source answered with PyPI data" in found.gaps
    engine.audit([requirements], [corpus["pypa"]], resolve=lambda pins: asked.append(pins) or Resolution(True, "ok"))
    assert len(asked) == 1  # a source that counts: resolved


FAKE_PIP_AUDIT = """#!{python}
import json, sys
pins = [line.strip().split("==") for i, a in enumerate(sys.argv) if a == "-r" for line in open(sys.argv[i + 1])]
vulns = {{"h11": [{{"id": "GHSA-h11", "aliases": [], "fix_versions": []}}]}}
print(json.dumps({{"dependencies": [{{"name": n, "version": v, "vulns": vulns.get(n, [])}} for n, v in pins]}}))
"""


def test_pip_audit_is_asked_about_the_transitive_distributions_too(corpus, monkeypatch):
    """pip-audit runs with --no-deps: the distributions pip resolved are handed to it as exact pins."""
    fake = corpus["tmp"] / "bin" / "pip-audit"
    fake.parent.mkdir()
    fake.write_text(FAKE_PIP_AUDIT.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    requirements = write(corpus["tmp"] / "requirements.txt", "uvicorn==0.30.0\n")
    resolved = Resolution(True, "pip resolved 2", {"uvicorn": "0.30.0", "h11": "0.16.0"})
    found = engine.audit([requirements], [], pip_audit_mode="required", resolve=lambda pins: resolved)
    assert found.pip_audit.audited == {"uvicorn", "h11"}
    assert [(f.label, f.source) for f in found.findings] == [("h11==0.16.0 GHSA-h11 (transitive)", "pip-audit")]
    assert found.complete


@pytest.mark.parametrize("ok", [None, False])
def test_an_unresolved_transitive_set_leaves_the_audit_incomplete_and_keeps_the_pinned_findings(corpus, ok):
    requirements = write(corpus["tmp"] / "requirements.txt", "starlette==0.26.1\n")
    found = engine.audit([requirements], [corpus["pypa"]], resolve=lambda pins: Resolution(ok, "the index is down"))
    assert found.gaps == ["could not resolve the transitive distributions: the index is down"]
    assert found.unresolved and not found.transitive and not found.complete
    assert [f.label for f in found.findings] == ["starlette==0.26.1 PYSEC-2023-83"]
    assert formats.exit_status(found) == formats.VULNERABLE


def test_requirements_files_pin_exactly_one_pep440_version_or_say_why_not(corpus):
    tmp = corpus["tmp"]
    write(tmp / "base.txt", "uvicorn==0.11.5\n")
    write(tmp / "constraints.txt", "anyio==4.0.0\n")
    requirements = write(
        tmp / "requirements.txt",
        "--index-url https://pypi.org/simple\n-r base.txt\n--constraint constraints.txt\n"
        "starlette==0.26.1 \\\n    --hash=sha256:0123 \\\n    --hash=sha256:4567\n"
        "Django[bcrypt]==4.2.0rc1 ; python_version >= '3.8'  # a comment\n"
        "requests>=2.0\njinja2===2.10\nflask==2.10.*\nclick==8.1,<9\nfoo==not-a-version\n"
        "-e ./local\nbar @ https://example.org/bar-1.0.tar.gz\ngit+https://github.com/x/y.git#egg=y\n",
    )
    read = inputs.read([requirements])
    assert sorted((p.name, p.version) for p in read.pins) == [
        ("anyio", "4.0.0"),
        ("django", "4.2.0rc1"),
        ("starlette", "0.26.1"),
        ("uvicorn", "0.11.5"),
    ]
    reasons = " | ".join(read.not_audited)
    for text in ("requests>=2.0", "jinja2===2.10", "flask==2.10.*", "click==8.1,<9", "foo==not-a-version"):
        assert f"{text} (not pinned to one PEP 440 version)" in reasons
    assert "-e ./local (editable)" in reasons and "bar @ https://example.org/bar-1.0.tar.gz (a URL" in reasons
    assert "git+https://github.com/x/y.git#egg=y (a local path or URL)" in reasons
    broken = inputs.read([write(tmp / "broken.txt", "requests==2.0\nthis is not (a requirement\n")])
    assert broken.problems and broken.problems[0].startswith(
        "broken.txt:2: 'this is not (a requirement' does not parse"
    )


LOCKFILES = {
    "poetry.lock": """
[[package]]
name = "Starlette"
version = "0.26.1"
[[package]]
name = "mylib"
version = "1.0"
[package.source]
type = "git"
url = "https://github.com/x/mylib.git"
""",
    "uv.lock": """
version = 1
[[package]]
name = "starlette"
version = "0.26.1"
source = { registry = "https://pypi.org/simple" }
[[package]]
name = "myservice"
version = "0.1.0"
source = { editable = "." }
""",
    "Pipfile.lock": json.dumps(
        {"default": {"starlette": {"version": "==0.26.1"}, "mylib": {"git": "https://x"}}, "develop": {}}
    ),
    "pdm.lock": """
[[package]]
name = "starlette"
version = "0.26.1"
[[package]]
name = "mylib"
version = "1.0"
path = "./mylib"
""",
    "pylock.toml": """
lock-version = "1.0"
created-by = "test"
[[packages]]
name = "starlette"
version = "0.26.1"
[[packages.wheels]]
url = "https://files.example.org/starlette-0.26.1-py3-none-any.whl"
hashes = { sha256 = "0000000000000000000000000000000000000000000000000000000000000000" }
[[packages]]
name = "mylib"
[packages.vcs]
type = "git"
url = "https://github.com/x/mylib.git"
commit-id = "0123456789abcdef0123456789abcdef01234567"
""",
}


@pytest.mark.parametrize("name", list(LOCKFILES))
def test_each_lockfile_format_is_audited_and_direct_sources_are_not(corpus, name):
    lockfile = write(corpus["tmp"] / name, LOCKFILES[name])
    found = engine.audit([lockfile], [corpus["pypa"]], cache=corpus["tmp"] / "c")
    assert [(f.pin.name, f.pin.version, f.id) for f in found.findings] == [("starlette", "0.26.1", "PYSEC-2023-83")]
    assert len(found.not_audited) == 1 and ("mylib" in found.not_audited[0] or "myservice" in found.not_audited[0])


def test_an_invalid_pylock_is_a_problem_not_an_empty_lock(corpus):
    found = engine.audit([write(corpus["tmp"] / "pylock.toml", 'lock-version = "9.0"\n')], [corpus["pypa"]])
    assert found.problems and "pylock.toml: does not parse" in found.problems[0]
    assert formats.exit_status(found) == formats.NOT_AUDITED


@pytest.mark.parametrize(
    "content, problem",
    [
        ("", "empty"),
        ("id: [unclosed", "does not parse"),
        ("- a list\n- not a mapping\n", "not a mapping"),
        ("id: PYSEC-1\nsummary: no affected\n", "lacks affected"),
        ("affected: []\n", "lacks id"),
    ],
)
def test_a_broken_record_leaves_the_audit_incomplete_naming_its_file(corpus, content, problem):
    write(corpus["pypa"] / "vulns" / "starlette" / "PYSEC-9999-1.yaml", content)
    found = engine.audit([write(corpus["tmp"] / "r.txt", "uvicorn==0.30.0\n")], [corpus["pypa"]])
    assert any("vulns/starlette/PYSEC-9999-1.yaml" in p and problem in p for p in found.gaps), found.gaps
    assert formats.exit_status(found) == formats.NOT_AUDITED


def test_unparseable_bounds_count_as_affected_and_say_so(corpus):
    odd = osv_dir(
        corpus["tmp"] / "odd", [osv("GHSA-odd", "uvicorn", [{"introduced": "0"}, {"fixed": "not.a.version!"}])]
    )
    found = engine.audit([write(corpus["tmp"] / "r.txt", "uvicorn==0.30.0\n")], [odd])
    (finding,) = found.findings
    assert finding.id == "GHSA-odd" and "unparseable bound fixed 'not.a.version!'" in finding.note


def test_stale_unknown_age_no_data_and_a_foreign_sample_are_never_clean(corpus):
    tmp, pins = corpus["tmp"], write(corpus["tmp"] / "r.txt", "uvicorn==0.30.0\n")
    stale = osv_dir(
        tmp / "stale", [osv("GHSA-x", "uvicorn", [{"introduced": "0"}, {"fixed": "0.1"}])], NOW - timedelta(days=30)
    )
    found = engine.audit([pins], [stale], max_age_days=7)
    assert found.gaps[0] == (
        f"{stale} is stale: 30 days old (snapshot.json), more than 7 "
        "(update the mirror, or raise security.dependencies.max_age_days)"
    )
    assert not found.problems and formats.exit_status(found) == formats.NOT_AUDITED
    undated = osv_dir(tmp / "undated", [{**osv("GHSA-y", "uvicorn", []), "modified": ""}], taken=None)
    assert (
        engine.audit([pins], [undated])
        .gaps[0]
        .endswith("age unknown (no snapshot.json, git history or modified dates)")
    )
    npm_only = osv_dir(
        tmp / "npm",
        [{**osv("GHSA-z", "left-pad", []), "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"}}]}],
    )
    assert engine.audit([pins], [npm_only]).gaps[0] == f"{npm_only}: no PyPI advisories (no data)"
    sample = osv_dir(tmp / "sample", [osv("GHSA-s", "uvicorn", [])], taken=None)
    (sample / "snapshot.json").write_text(json.dumps({"sample": True, "for": "kundli-service"}))
    assert (
        engine.audit([pins], [sample], product="shop").gaps[0]
        == f"{sample} is a sample for kundli-service, not an advisory mirror"
    )
    mine = engine.audit([pins], [sample], product="kundli-service")
    assert mine.complete and mine.warnings == [f"{sample} is a 1-record sample, not a full mirror"]


def test_pip_audit_skips_count_only_where_no_offline_mirror_covered_the_pins():
    result = engine.Audit([inputs.Pin("uvicorn", "0.30.0", "r.txt:1")], [], [], [], PipAudit(False, ""))
    skipped = PipAudit(False, "audited nothing", skipped=["uvicorn: Dependency not found on PyPI"])
    engine.add_pip_audit(result, skipped, covered=True, mode="auto")
    assert result.not_audited == [] and result.problems == []
    engine.add_pip_audit(result, skipped, covered=False, mode="auto")
    assert result.not_audited == ["pip-audit skipped uvicorn: Dependency not found on PyPI"]
    engine.add_pip_audit(result, skipped, covered=True, mode="required")
    assert result.gaps == ["pip-audit is required but did not audit: audited nothing (security.dependencies.pip_audit)"]


def test_the_audit_command_exits_0_clean_1_vulnerable_2_not_audited(corpus):
    tmp, mirror = corpus["tmp"], str(corpus["pypa"])
    clean = relcheck_cli(None, "audit", str(write(tmp / "ok.txt", "uvicorn==0.30.0\n")), "--advisories", mirror)
    assert clean.returncode == 0 and "no known vulnerabilities" in clean.stdout
    bad = relcheck_cli(
        None, "audit", str(write(tmp / "bad.txt", "uvicorn==0.11.5\n")), "--advisories", mirror, "--json"
    )
    assert bad.returncode == 1
    (finding,) = json.loads(bad.stdout)["findings"]
    assert (finding["package"], finding["id"], finding["fixed_in"]) == ("uvicorn", "PYSEC-2020-150", ["0.11.7"])
    loose = relcheck_cli(None, "audit", str(write(tmp / "loose.txt", "uvicorn>=0.30\n")), "--advisories", mirror)
    assert loose.returncode == 2 and "uvicorn>=0.30 (not pinned to one PEP 440 version)" in loose.stdout
    stale = relcheck_cli(None, "audit", str(tmp / "ok.txt"), "--advisories", mirror, "--max-age-days", "-1")
    assert stale.returncode == 2 and "is stale" in stale.stdout
    h11 = str(osv_dir(tmp / "h11", [osv("GHSA-h11-all", "h11", [{"introduced": "0"}])]))  # uvicorn pulls h11 in
    transitive = relcheck_cli(None, "audit", str(tmp / "ok.txt"), "--advisories", mirror, h11, "--json")
    assert transitive.returncode == 1, transitive.stdout
    (finding,) = json.loads(transitive.stdout)["findings"]
    assert (finding["package"], finding["where"]) == ("h11", engine.TRANSITIVE)


def test_a_kept_resolution_is_reused_for_the_same_inputs_and_says_so_a_failed_one_never(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("fastapi==0.1\n")
    answers = [Resolution(None, "index unreachable"), Resolution(True, "pip resolved 1", {"fastapi": "0.1"})]
    monkeypatch.setenv(dependencies.CACHE_ENV, str(tmp_path / "kept"))
    monkeypatch.setattr(dependencies, "resolve_with_pip", lambda *args: answers.pop(0))
    found = [dependencies.resolve([requirements], [], "python3") for _ in range(3)]
    assert [r.ok for r in found] == [None, True, True] and not answers  # pip asked twice, the third kept
    kept = f"(the answer kept in {dependencies.CACHE_ENV})"
    assert found[2].resolved == {"fastapi": "0.1"} and found[2].detail.endswith(kept)
    elsewhere = tmp_path / "other-tree" / "requirements.txt"  # the same pins in another tree: the same answer
    elsewhere.parent.mkdir()
    elsewhere.write_text("fastapi==0.1\n")
    assert dependencies.resolve([elsewhere], [], "python3").detail.endswith(kept)
    for path, text in ((requirements, "fastapi==0.2\n"), (elsewhere, "fastapi==0.1\n-e .\n")):
        path.write_text(text)  # other pins, or a line whose meaning depends on where the file is: pip again
        answers.append(Resolution(False, "no such version"))
        assert dependencies.resolve([path], [], "python3").ok is False
    assert not answers
