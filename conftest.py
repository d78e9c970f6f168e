"""Registers the relcheck plugin and the fixtures/ modules. The plugin loads relcheck.toml (or
--relcheck-config / $RELCHECK_CONFIG) when the checklist (checks/) runs, and makes every
Pre-Release sub-phase marker imply `pre_release`."""

pytest_plugins = [
    "relcheck.plugin",
    "fixtures.target",
    "fixtures.quality",
    "fixtures.security",
    "fixtures.docs",
    "fixtures.performance",
    "fixtures.deployment",
    "fixtures.signoff",
    "fixtures.monitoring",
]
