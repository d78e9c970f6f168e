"""The vocabulary every layer shares: config, the checklist, item statuses, evidence, errors, secrets, templates, files
and where a release's records live."""
