"""Operating a release: the deploy and rollback procedures, the down-migration rehearsal, the full rehearsal on the
embedded target, the incident record."""
