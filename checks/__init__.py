"""The checklist: one module per section of the seed, one check per item, marked by phase."""
