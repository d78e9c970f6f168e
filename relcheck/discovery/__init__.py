"""`relcheck init`: probe a running service, its source tree and its database (bounded, read-only, allow-listed
hosts only) and write a minimal, commented config with a summary of what stays NOT VERIFIED until which keys are set.
"""

from __future__ import annotations

from pathlib import Path

from relcheck.core.config import LOOPBACK
from relcheck.core.errors import RelcheckError
from relcheck.discovery import database, scenarios, service, tree, writer
from relcheck.target import logs


def init(
    base_url: str,
    out: Path,
    source: Path | None = None,
    dsn: str = "",
    product: str = "",
    release_version: str = "",
    allowed_hosts: list[str] | None = None,
    write_load: bool = False,
    force: bool = False,
) -> str:
    """Write the config to out; the summary to print."""
    hosts = allowed_hosts or list(LOOPBACK)
    if out.exists() and not force:
        raise RelcheckError(f"{out} exists: choose another --out or pass --force")
    if source is not None and not source.is_dir():
        raise RelcheckError(f"--source {source}: not a directory")
    found = service.discover(base_url, hosts, release_version)
    found_tree = tree.discover(source) if source else None
    found_db = database.discover(dsn) if dsn else None
    name = product or found.title or (found_tree.source.name if found_tree else "service")
    name = "".join(c if c.isalnum() or c in "._+-" else "-" for c in name).strip("-") or "service"
    load_files = scenarios.write(found, out.parent / "load") if write_load else {}
    draft = writer.draft(found, found_tree, found_db, out, name, release_version, hosts, load_files, dsn)
    draft.found[:0] = [
        f"service: {found.title or '?'} at {found.base_url} ({found.requests} requests)",
        f"OpenAPI: {found.openapi_route or 'none'} ({len(found.operations)} operations, "
        f"auth {found.auth_scheme or found.auth_header if found.operations else 'not documented'})",
        f"health: {found.health_route or 'none'}; security headers on every answer: "
        f"{', '.join(found.security_headers) or 'none'}",
    ]
    if found_tree:
        draft.found.append(
            f"tree: {found_tree.source}{f' (service in {found_tree.app_dir}/)' if found_tree.app_dir else ''}; "
            f"python {found_tree.python or 'not in the tree'}; tests {found_tree.tests or 'none'}"
        )
    if found_db and not found_db.error:
        audit = ", ".join(found_db.audit_tables) or "none"
        draft.found.append(
            f"database: PostgreSQL {found_db.version}, {len(found_db.tables)} tables (audit-like: {audit})"
        )
    draft.found += [f"note: {n}" for n in found.notes]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(draft.lines) + "\n")
    if found.server_errors:
        logs.write_own_requests(writer.init_record(out), found.base_url, "relcheck init", found.server_errors)
    return writer.summary(draft, out)
