"""The target's git history: a repository, or a bundle cloned into a temporary directory."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from relcheck.core.errors import ToolError
from relcheck.target import commands


@dataclass
class Commit:
    sha: str
    parents: list[str]
    author: str
    date: str
    subject: str
    body: str

    def trailers(self, names: list[str]) -> list[str]:
        wanted = tuple(f"{name.lower()}:" for name in names)
        return [line.strip() for line in self.body.splitlines() if line.strip().lower().startswith(wanted)]


@dataclass
class TreeComparison:
    """A directory's files against a ref's tree, as git sees them (its .gitignore applies)."""

    ref: str
    ref_tree: str
    tree: str
    changes: list[tuple[str, str]]  # (M modified / A not in the ref / D missing, path)

    @property
    def same(self) -> bool:
        return self.tree == self.ref_tree

    def describe(self) -> str:
        """ "3 files modified, 1 not in v1.1.0" ("identical to v1.1.0" when the trees are equal)."""
        if self.same:
            return f"identical to {self.ref}"
        words = {"M": "modified", "A": f"not in {self.ref}", "D": "missing"}
        counts = {kind: sum(1 for k, _ in self.changes if k == kind) for kind in words}
        return ", ".join(f"{n} file{'s' if n != 1 else ''} {words[k]}" for k, n in counts.items() if n)


class GitRepo:
    """Read-only questions about a repository's history: `repo.commits("v1.0.0", "v1.1.0")`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._clone: Path | None = None
        if self.path.is_file():  # a bundle: clone it once
            self._clone = Path(tempfile.mkdtemp(prefix="relcheck-git-"))
            self._git_at(self._clone.parent, "clone", "--quiet", "--no-checkout", str(self.path), str(self._clone))
            self.workdir = self._clone
        elif (self.path / ".git").exists() or self.path.name.endswith(".git"):
            self.workdir = self.path
        else:
            raise ToolError(f"{self.path} is not a git repository or bundle")

    def close(self) -> None:
        if self._clone:
            shutil.rmtree(self._clone, ignore_errors=True)
            self._clone = None

    def _git_at(self, cwd: Path, *args: str, env: dict | None = None) -> str:
        return commands.run(["git", *args], cwd=cwd, timeout=60, tool_env=env).raise_for(f"git {args[0]}").stdout

    def git(self, *args: str) -> str:
        return self._git_at(self.workdir, *args)

    def has_ref(self, ref: str) -> bool:
        try:
            self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
            return True
        except ToolError:
            return False

    def sha(self, ref: str) -> str:
        return self.git("rev-parse", f"{ref}^{{commit}}").strip()

    def commits(self, since: str, until: str, first_parent: bool = True) -> list[Commit]:
        """Commits in since..until (newest first), following first parents so merges stand for their branch."""
        sep, end = "\x1f", "\x1e"
        args = ["log", f"--format=%H{sep}%P{sep}%an <%ae>{sep}%aI{sep}%s{sep}%B{end}", f"{since}..{until}"]
        if first_parent:
            args.insert(1, "--first-parent")
        out = self.git(*args)
        commits = []
        for record in out.split(end):
            fields = record.strip("\n").split(sep)
            if len(fields) == 6:
                sha, parents, author, date, subject, body = fields
                commits.append(Commit(sha, parents.split(), author, date, subject, body))
        return commits

    def changed_files(self, since: str, until: str) -> list[str]:
        return [line for line in self.git("diff", "--name-only", f"{since}..{until}").splitlines() if line]

    def show(self, ref: str, path: str) -> str:
        return self.git("show", f"{ref}:{path}")

    def compare_tree(self, ref: str, directory: Path) -> TreeComparison:
        """The directory's content (modified, untracked and deleted files included) against the ref's tree,
        through a throwaway index: the repository and the directory are only read."""
        git_dir = self.workdir / ".git" if (self.workdir / ".git").exists() else self.workdir
        with tempfile.TemporaryDirectory(prefix="relcheck-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            base = ["--git-dir", str(git_dir), "--work-tree", str(directory)]
            self._git_at(directory, *base, "read-tree", ref, env=env)
            self._git_at(directory, *base, "add", "--all", ".", env=env)
            tree = self._git_at(directory, *base, "write-tree", env=env).strip()
            listed = self._git_at(directory, *base, "diff-index", "--cached", "--name-status", ref, env=env)
        changes = [(line.split("\t", 1)[0][:1], line.split("\t", 1)[1]) for line in listed.splitlines() if "\t" in line]
        return TreeComparison(ref, self.git("rev-parse", f"{ref}^{{tree}}").strip(), tree, changes)

    @contextmanager
    def worktree(self, ref: str) -> Iterator[Path]:
        """The tree at ref, checked out (detached, the repository's hooks off) into a throwaway `git worktree` under
        a temporary directory, removed afterwards, also on error: `with repo.worktree("v1.0.0") as tree: ...`."""
        scratch = Path(tempfile.mkdtemp(prefix="relcheck-worktree-"))
        tree = scratch / "tree"
        no_hooks = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": "/dev/null"}
        try:
            self._git_at(self.workdir, "worktree", "add", "--quiet", "--detach", str(tree), ref, env=no_hooks)
            yield tree
        finally:
            try:
                self.git("worktree", "remove", "--force", str(tree))
            except ToolError:  # never added, or already gone: git forgets it once its directory is
                shutil.rmtree(scratch, ignore_errors=True)
                with suppress(ToolError):
                    self.git("worktree", "prune")
            shutil.rmtree(scratch, ignore_errors=True)

    def export(self, ref: str, destination: Path) -> Path:
        """A plain copy of the tree at ref (no .git), e.g. the previous release to roll back to."""
        destination.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as workdir:
            archive = Path(workdir) / "tree.tar"
            self._git_at(self.workdir, "archive", "--format=tar", "-o", str(archive), ref)
            with tarfile.open(archive) as tar:
                tar.extractall(destination, filter="data")
        return destination
