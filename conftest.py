"""The relcheck pytest plugin is loaded by its pytest11 entry point (relcheck.run.plugin) wherever pytest runs; when
the session runs the checklist (checks/) it loads the config and registers the fixtures/ modules."""
