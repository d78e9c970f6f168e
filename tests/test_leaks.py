"""Data protection's leak heuristics: what is a card number, an e-mail address or a secret in an answer or a log
line (true positives found, masked, each naming its line or JSON pointer; ids, times and examples are not)."""

from __future__ import annotations

import json

import pytest

from relcheck.core.config import DataProtection
from relcheck.probes.protection import Finding, LeakRules, answer_leaks, is_documentation, text_leaks
from relcheck.target.http import Answer

TOKEN = "kst_0123456789abcdef"
RULES = LeakRules.of(DataProtection(), {TOKEN: "the API token of role admin", "s3cret-pw": "the database password"})


def answer(body, path: str = "/v1/orders/7", content_type: str = "application/json") -> Answer:
    text = body if isinstance(body, str) else json.dumps(body)
    return Answer("GET", f"http://127.0.0.1:1{path}", 200, {"Content-Type": content_type}, text)


@pytest.mark.parametrize(
    "line, problem",
    [
        ("paid with card 4111 1111 1111 1111 exp 12/27", "contains a card number (4111 **** **** 1111)"),
        ("card=4111111111111111", "contains a card number (4111 **** **** 1111)"),
        ("amex 3782-822463-10005 charged", "contains a card number (3782 **** *** 0005)"),
        ("mc 5555-5555-5555-4444.", "contains a card number (5555 **** **** 4444)"),
        ("mail sent to jane.doe@corp.com", "contains an e-mail address (j***@corp.com)"),
        ("From: Jane <jane@corp.com>", "contains an e-mail address (j***@corp.com)"),
    ],
)
def test_a_real_card_number_or_address_is_found_and_masked(line, problem):
    assert RULES.problems(line) == [problem]


@pytest.mark.parametrize(
    "line",
    [
        "4111111111111112 is not Luhn-valid",
        "ts=1764750441123 GET /v1/kundli 200",  # epoch ms (Luhn-valid or not, a time)
        "took 1764750441123456",  # epoch µs
        "stamp 20261203084721127",  # yyyymmddHHMMSSfff
        "request a1234567-8901-2345-6789-012345678901 done",  # a UUID's digits
        "request 40128888-8888-1881-4111-111111111111 done",  # an all-digit UUID
        "order_id=4111111111111111 shipped",  # an id field
        '"orderId": "4111111111111111"',
        "GET /v1/orders/4532015112830366 200",  # a path segment
        "order #4532015112830366",
        "serial 4111111111111111111112",  # a longer digit run
        "4111 1111 1111 1111 1111",  # five groups
        "0000000000000000",
        '<input type="email" name="email" placeholder="you@example.com" value="me@example.com">',
        "lodash@4.17.21 and icon@2x",  # versions, not addresses
    ],
)
def test_ids_times_uuids_and_placeholders_are_not_leaks(line):
    assert RULES.problems(line) == []  # every number above is Luhn-valid except the first


def test_a_finding_names_its_json_pointer_and_a_fields_name_decides_ids():
    body = {
        "id": 4111111111111111,
        "created_at": 1764750441123,
        "items": [{"sku": "a/b", "order_ref": "4532015112830366"}, {"note": "card 4532015112830366"}],
        "customer": {"contact": "jane.doe@corp.com"},
    }
    assert answer_leaks(answer(body), RULES, documentation=False) == [
        Finding("answer to GET /v1/orders/7 /items/1/note", "contains a card number (4532 **** **** 0366)"),
        Finding("answer to GET /v1/orders/7 /customer/contact", "contains an e-mail address (j***@corp.com)"),
    ]
    assert answer_leaks(answer({"a/b~c": "4111111111111111"}), RULES, False)[0].where.endswith(" /a~1b~0c")
    assert answer_leaks(answer({"by_user": {"jane@corp.com": {"card": "4111111111111111"}}}), RULES, False) == [
        Finding("answer to GET /v1/orders/7 /by_user/* (a field name)", "contains an e-mail address (j***@corp.com)"),
        Finding("answer to GET /v1/orders/7 /by_user/*/card", "contains a card number (4111 **** **** 1111)"),
    ]  # a leaking name is masked in the pointers too


def test_documentation_pages_and_form_attributes_show_example_addresses():
    docs = {"info": {"contact": {"email": "api@corp.com"}}, "example": {"email": "user@example.com"}}
    assert is_documentation("/openapi.json", DataProtection().documentation_paths)
    assert is_documentation("/docs/oauth2-redirect", DataProtection().documentation_paths)
    assert not is_documentation("/docsearch", DataProtection().documentation_paths)
    assert answer_leaks(answer(docs, "/openapi.json"), RULES, documentation=True) == []
    assert len(answer_leaks(answer(docs, "/v1/me"), RULES, documentation=False)) == 2

    form = '<form>\n<input name="email" placeholder="you@example.com">\n<p>Signed in as jane@corp.com</p>\n</form>'
    assert answer_leaks(answer(form, "/signup", "text/html"), RULES, documentation=False) == [
        Finding("answer to GET /signup line 3", "contains an e-mail address (j***@corp.com)")
    ]
    card_in_docs = answer({"example": "4111 1111 1111 1111"}, "/docs")
    assert answer_leaks(card_in_docs, RULES, documentation=True)[0].problem.startswith("contains a card number")


def test_a_secret_in_a_log_names_its_line_and_kind_never_its_value():
    lines = [(41, "INFO GET /health 200"), (42, f"DEBUG auth header Bearer {TOKEN}"), (43, "dsn pw s3cret-pw")]
    found = text_leaks("service log (/var/log/kundli.log)", lines, RULES)
    assert found == [
        Finding("service log (/var/log/kundli.log) line 42", "contains the API token of role admin"),
        Finding("service log (/var/log/kundli.log) line 43", "contains the database password"),
    ]
    assert TOKEN not in repr(found)
    headers = Answer("GET", "http://h/x", 200, {"X-Debug": f"token={TOKEN}"}, "")
    assert answer_leaks(headers, RULES, False) == [
        Finding("answer to GET /x header X-Debug", "contains the API token of role admin")
    ]


def test_heuristics_can_be_switched_off_and_extended():
    cfg = DataProtection(card_numbers=False, email_addresses=False, pii_patterns={"an IBAN": r"\bDE\d{20}\b"})
    rules = LeakRules.of(cfg, {})
    assert rules.problems("4111111111111111 jane@corp.com DE89370400440532013000") == ["contains an IBAN (D***)"]
