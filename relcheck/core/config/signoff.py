"""[signoff]: the roles' signatures and the statement's signing policy."""

from __future__ import annotations

from pydantic import Field, model_validator

from relcheck.core.config.base import Model


class SignoffPolicy(Model):
    roles: list[str]  # roles of signoff.roles who may sign the run's statement ...
    required: int = Field(1, ge=1)  # ... and how many of them must


class Signoff(Model):
    allowed_signers: str = ""  # an OpenSSH allowed_signers file (principal, key), relative to this file
    report: str = "pre_release"  # the run whose report the roles sign
    roles: dict[str, list[str]] = {}  # role (as in the checklist) -> principals who may sign as it
    policy: dict[str, SignoffPolicy] = {}  # run label (e.g. "pre_release") -> who must sign its statement (N of M)

    @model_validator(mode="after")
    def _policy_names_roles(self):
        for run, policy in self.policy.items():
            unknown = [r for r in policy.roles if r not in self.roles]
            if unknown:
                raise ValueError(f"policy.{run}: {', '.join(unknown)} not in signoff.roles")
            if policy.required > len(policy.roles):
                raise ValueError(f"policy.{run}: required {policy.required} of only {len(policy.roles)} roles")
        return self
