"""Statements people sign with their SSH keys: the signature primitive, waivers and attestations (inputs to checks and
verdicts)."""
