"""The bundled reference service: its checked-out tree is exactly its release tag in the history bundle."""

import subprocess

from conftest import EXAMPLE, REPO

IGNORED = ("__pycache__", ".pytest_cache", ".coverage")


def test_examples_tree_is_the_release_tag_of_the_bundle(tmp_path, default_config):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO / "examples" / "kundli-service.bundle"), str(clone)], check=True)
    tag = default_config.release.git_ref
    files = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", tag], cwd=clone, check=True, capture_output=True, text=True
    ).stdout.split()
    for name in files:
        committed = subprocess.run(["git", "show", f"{tag}:{name}"], cwd=clone, check=True, capture_output=True).stdout
        assert (EXAMPLE / name).read_bytes() == committed, (
            f"{name} differs from {tag} (run examples/sync-kundli-service.sh)"
        )
    present = {
        str(p.relative_to(EXAMPLE))
        for p in EXAMPLE.rglob("*")
        if p.is_file() and not any(part in IGNORED or part.startswith(".coverage.") for part in p.parts)
    }
    assert present == set(files)
    assert {"v1.0.0", "v1.1.0"} <= set(
        subprocess.run(["git", "tag"], cwd=clone, capture_output=True, text=True).stdout.split()
    )
