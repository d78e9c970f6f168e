"""One module per evidence source: the target's tests and coverage, bandit, advisories, dependencies, load runs and the
judge, backups, protection, access, audit trail, docs, notices, metrics, review, tracker, contacts."""
