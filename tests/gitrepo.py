"""Throwaway git repositories for history-based checks."""

from __future__ import annotations

import subprocess
from pathlib import Path


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "Dev One")
        self.git("config", "user.email", "dev@example.invalid")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path, check=True, capture_output=True, text=True).stdout

    def commit(self, message: str, files: dict[str, str]) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            self.git("add", name)
        self.git("commit", "-q", "-m", message)

    def tag(self, name: str) -> None:
        self.git("tag", "-a", name, "-m", name)

    def merge(self, branch: str, message: str) -> None:
        self.git("merge", "-q", "--no-ff", branch, "-m", message)


REVIEWED = "\n\nReviewed-by: Reviewer <reviewer@example.invalid>"


def release_history(path: Path, changes: list[tuple[str, dict[str, str]]]) -> Repo:
    """v1.0.0 with code, docs and a changelog; then the given changes; tagged v1.1.0."""
    repo = Repo(path)
    repo.commit(
        "Release 1.0.0" + REVIEWED,
        {
            "app/auth.py": "TOKEN_BYTES = 32\n",
            "app/core.py": "VERSION = '1.0.0'\n",
            "docs/guide.md": "# Guide\n",
            "SECURITY.md": "# Security\nReport to security@example.invalid\n",
            "CHANGELOG.md": "# Changelog\n\n## [1.0.0] - 2026-09-14\n- first release\n",
        },
    )
    repo.tag("v1.0.0")
    for message, files in changes:
        repo.commit(message, files)
    repo.tag("v1.1.0")
    return repo
