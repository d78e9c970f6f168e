"""Emergency Contacts: each role of the checklist has someone reachable in the target's contacts document: a name
with an e-mail address, a phone number (not a date) or a chat/pager handle; never a placeholder."""

import pytest

from relcheck.core import checklist
from relcheck.core.statuses import require
from relcheck.probes import contacts

pytestmark = pytest.mark.pre_deploy
CONTACT_ITEMS = [item for item in checklist.load().items if item.kind == "contact"]


@pytest.mark.parametrize(
    "section, role",
    [
        pytest.param(
            item.section,
            item.text,
            marks=pytest.mark.item(item.section, item.text),
            id=f"{item.section.split(' / ')[-1]}: {item.text}",
        )
        for item in CONTACT_ITEMS
    ],
)
def test_emergency_contact(relcheck_config, section, role, evidence):
    require(relcheck_config.contacts, "no contacts document configured (contacts)")
    path = relcheck_config.source / relcheck_config.contacts
    assert path.is_file(), f"{relcheck_config.contacts} does not exist"
    found = contacts.find(contacts.read(path), section.split(" / ")[-1], role)
    evidence.kv(role, {"document": relcheck_config.contacts, "listed as": found.who if found else "missing"})
    assert found, f"{role} is not listed in {relcheck_config.contacts}"
    assert not found.problem, f"{role}: {found.problem}"
