"""Run the service: python -m kundli [--host H] [--port P]."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from .logconf import configure
from .settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kundli", description="Run kundli-service.")
    parser.add_argument("--host", help="listen address (default: KUNDLI_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default: KUNDLI_PORT or 8000)")
    args = parser.parse_args(argv)
    from .app import create_app
    try:
        settings = Settings.from_env()
        configure(settings.log_file, settings.log_level)
        app = create_app(settings)
    except (SettingsError, OSError) as exc:
        print(f"kundli-service: configuration error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host or settings.host, port=args.port or settings.port,
                server_header=False, access_log=False, log_config=None, proxy_headers=True,
                forwarded_allow_ips=settings.forwarded_allow_ips, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
