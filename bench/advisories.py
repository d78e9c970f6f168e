"""python -m bench.advisories: how fast the dependency audit loads full advisory databases, measured side by side.

A corpus the size of the real ones is generated in a temporary directory: a PyPA advisory-database clone (2,700
YAML records under vulns/<package>/, committed) and an OSV PyPI/all.zip (25,000 JSON records). Each is loaded
cold (no cache) and warm (the digest-keyed cache), and the PyPA one also with PyYAML's pure-Python loader, for
the libyaml ratio. Goals: PyPA cold <= 2 s, OSV archive cold <= 10 s on 2 cores.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml

from relcheck.probes.audit import sources

DETAILS = "An attacker who can send crafted input may cause the service to misbehave. " * 12


def record(n: int, ecosystem_id: str) -> dict:
    rng = random.Random(n)
    package = f"package-{n % 900}"
    major = rng.randint(0, 5)
    return {
        "id": f"{ecosystem_id}-{2015 + n % 10}-{n}",
        "modified": "2026-11-24T10:00:00Z",
        "published": "2024-01-01T00:00:00Z",
        "aliases": [f"CVE-{2015 + n % 10}-{10000 + n}", f"GHSA-{n:04x}-aaaa-bbbb"],
        "summary": f"Issue {n} in {package}",
        "details": DETAILS,
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package, "purl": f"pkg:pypi/{package}"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": f"{major}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"}],
                    }
                ],
                "versions": [f"{major}.{minor}.0" for minor in range(rng.randint(0, 30))],
            }
        ],
        "references": [{"type": "ADVISORY", "url": f"https://example.org/advisories/{n}"}],
    }


def pypa_clone(root: Path, count: int) -> Path:
    for n in range(count):
        data = record(n, "PYSEC")
        path = root / "vulns" / data["affected"][0]["package"]["name"] / f"{data['id']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    git = ["git", "-C", str(root), "-c", "user.name=bench", "-c", "user.email=bench@example.org"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "advisories"], check=True)
    return root


def osv_archive(path: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(count):
            data = record(n, "GHSA")
            archive.writestr(f"{data['id']}.json", json.dumps(data))
    return path


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="relcheck-bench-advisories-") as tmp:
        root = Path(tmp)
        pypa, archive = pypa_clone(root / "advisory-database", 2700), osv_archive(root / "all.zip", 25000)
        cache = root / "cache"
        pypa_cold, loaded = timed(lambda: sources.load(pypa, cache))
        pypa_warm, _ = timed(lambda: sources.load(pypa, cache))
        zip_cold, zipped = timed(lambda: sources.load(archive, cache))
        zip_warm, _ = timed(lambda: sources.load(archive, cache))
        fast_loader, sources.LOADER = sources.LOADER, yaml.SafeLoader
        pypa_pure, _ = timed(lambda: sources.load(pypa, None))
        sources.LOADER = fast_loader
        pypa_c, _ = timed(lambda: sources.load(pypa, None))
    figures = {
        "pypa_records": len(loaded.records),  # type: ignore[attr-defined]
        "pypa_cold_s": pypa_cold,
        "pypa_warm_s": pypa_warm,
        "osv_zip_records": len(zipped.records),  # type: ignore[attr-defined]
        "osv_zip_cold_s": zip_cold,
        "osv_zip_warm_s": zip_warm,
        "libyaml_speedup": pypa_pure / pypa_c,
        "libyaml": fast_loader is not yaml.SafeLoader,
    }
    goals = {"pypa_cold_s": "<= 2", "osv_zip_cold_s": "<= 10"}
    for name, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{name:20} {shown:>10}  {goals.get(name, '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
