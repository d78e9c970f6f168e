"""Commands on another host through a command prefix such as ["ssh", "ops@app1"]. The prefix receives ONE shell
command line, as ssh hands it to the remote shell (locally the same convention is ["sh", "-c"]): every word is
shell-quoted on the way. Environment values — secrets among them — travel on stdin and are exported by the remote
shell, never on a command line that `ps` shows on either host.

    argv, stdin = through(["ssh", "ops@app1"], ["pg_dump", "--dbname", "shop"], env={"PGPASSWORD": pw})
    subprocess.run(argv, input=stdin, ...)
"""

from __future__ import annotations

import shlex
from pathlib import Path

from relcheck.core.errors import TargetError

READ_ENVIRONMENT = 'while IFS= read -r setting; do export "$setting"; done'


def through(
    prefix: list[str], words: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[list[str], str | None]:
    """The argv that runs words on the host the prefix reaches, in cwd there, with env; and what to send on stdin."""
    script = shlex.join(words)
    if cwd is not None:
        script = f"cd {shlex.quote(str(cwd))} && {script}"
    if not env:
        return [*prefix, script], None
    unsafe = [name for name, value in env.items() if not name.isidentifier() or "\n" in value]
    if unsafe:
        raise TargetError(f"cannot pass {', '.join(unsafe)} through {prefix[0]}: a name or value it cannot carry")
    return [*prefix, f"{READ_ENVIRONMENT}; {script}"], "".join(f"{name}={value}\n" for name, value in env.items())


def shown(prefix: list[str], words: list[str]) -> str:
    """How the command reads in a plan or log (no environment values)."""
    return shlex.join(through(prefix, words)[0]) if prefix else shlex.join(words)
