"""The system under test: HTTP, the service manager, PostgreSQL (live sessions read-only, scratch copies), its logs and
git history, the environments of commands run in its tree."""
