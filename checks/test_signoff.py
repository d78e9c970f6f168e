"""Release Sign-off: each role has signed the release's report (signoff.report) with a key allowed for it, over
that exact manifest. Until it has, the item is pending."""

import pytest

from relcheck.core import checklist
from relcheck.core.statuses import Pending, require
from relcheck.run.signoff import not_signable

pytestmark = pytest.mark.signoff
ROLES = [item for item in checklist.load().items if item.section.startswith("Release Sign-off")]


@pytest.mark.parametrize(
    "role", [pytest.param(item.text, marks=pytest.mark.item(item.section, item.text), id=item.text) for item in ROLES]
)
def test_role_signed_off(role, signed_report, evidence):
    mine = [s for s in signed_report.signoffs if s.role == role]
    evidence.kv(
        "Signed report",
        {
            "run": signed_report.run_dir,
            "verdict": signed_report.manifest.get("verdict"),
            "integrity": "; ".join(signed_report.integrity) or "report, manifest and evidence agree",
        },
    )
    evidence.table(
        "Signatures",
        ["principal", "key", "signed at", "valid"],
        [(s.principal, s.fingerprint, s.signed_at, "yes" if s.ok else f"NO: {s.problem}") for s in mine],
    )
    assert not signed_report.integrity, f"the signed report does not verify: {signed_report.integrity[0]}"
    bad = [s.problem for s in mine if not s.ok]
    assert not bad, bad[0]
    refused = not_signable(signed_report.manifest)
    assert not (mine and refused), f"signed a report that cannot carry a release sign-off: {refused}"
    require(not refused, f"the report to sign cannot carry a release sign-off: {refused}")
    if not mine:
        raise Pending(f"awaiting the signature of the {role} (relcheck sign REPORT --role '{role}' --key KEY)")
