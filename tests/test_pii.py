"""Personal data (supportdesk._pii): card masking at intake, redaction in logs and stores, search-query
scrubbing and invisible-character cleaning, measured on 200+ generated values."""

from __future__ import annotations

import io
import logging
import random
import re

import pytest

from supportdesk._pii import (
    clean_text,
    iban_valid,
    install_log_redaction,
    luhn_valid,
    mask_cards,
    redact,
    scrub_search_query,
)

RNG_SEED = 20261201


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


def generated_cards(n: int = 60, seed: int = RNG_SEED) -> list[str]:
    """Luhn-valid cards of the major schemes, written compact, in groups of four with spaces or dashes
    (Amex 4-6-5)."""
    rng = random.Random(seed)
    schemes = [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15),
               ("37", 15), ("6011", 16), ("65", 16), ("36", 14), ("35", 16), ("62", 17), ("6759", 18)]
    out = []
    for i in range(n):
        prefix, length = schemes[i % len(schemes)]
        digits = _luhn_complete(prefix, length, rng)
        style = i % 3
        if length == 15 and style:
            sep = " " if style == 1 else "-"
            out.append(sep.join([digits[:4], digits[4:10], digits[10:]]))
        elif style == 0:
            out.append(digits)
        else:
            sep = " " if style == 1 else "-"
            out.append(sep.join(digits[i : i + 4] for i in range(0, length, 4)))
    return out


def generated_emails(n: int = 60, seed: int = RNG_SEED) -> list[str]:
    """E-mail addresses with dots, plus tags, digits, hyphens, subdomains and mixed case."""
    rng = random.Random(seed)
    names = ["ana", "li.wei", "o'brien", "j.doe+billing", "MARIA.Gonzalez", "x_y", "k-9", "zoe.smith2", "a.b.c"]
    domains = ["example.com", "mail.example.co.uk", "Sub.Domain.example.org", "corp-mail.example.io",
               "uni.example.edu.au", "example.museum"]
    out = []
    for i in range(n):
        name = names[i % len(names)].replace("'", "") + (str(rng.randrange(100)) if i % 2 else "")
        out.append(f"{name}@{domains[rng.randrange(len(domains))]}")
    return out


def generated_phones(n: int = 60, seed: int = RNG_SEED) -> list[str]:
    """International phone numbers: +CC or 00CC, groups split by spaces, dashes, dots or parentheses."""
    rng = random.Random(seed)
    formats = [
        "+44 20 {4} {4}", "+1 ({3}) {3}-{4}", "+49 30 {6}", "+33 1 {2} {2} {2} {2}", "+81 3-{4}-{4}",
        "0044 {4} {6}", "+86 138 {4} {4}", "+91 {5} {5}", "+7 495 {3}-{2}-{2}", "+61 2 {4} {4}",
        "+55 11 9{4}-{4}", "+34 {3} {3} {3}", "+351 21 {3} {4}", "({3}) {3}-{4}", "{3}-{3}-{4}", "{3}.{3}.{4}",
        "+353 1 {3} {4}", "+27 21 {3} {4}", "+971 4 {3} {4}", "+82 2-{4}-{4}",
    ]

    def digits(k: int) -> str:
        return "".join(str(rng.randrange(10)) for _ in range(k))

    out = []
    for i in range(n):
        fmt = formats[i % len(formats)]
        out.append(re.sub(r"\{(\d)\}", lambda m: digits(int(m.group(1))), fmt))
    return out


def generated_ibans(n: int = 40, seed: int = RNG_SEED) -> list[str]:
    """Valid IBANs (mod-97) of several countries, compact or in groups of four."""
    rng = random.Random(seed)
    shapes = {"DE": "n18", "FR": "n10a11n2", "ES": "n20", "NL": "a4n10", "GB": "a4n14", "IT": "a1n10a12",
              "CH": "n17", "BE": "n12"}
    out = []
    countries = list(shapes)
    for i in range(n):
        country = countries[i % len(countries)]
        bban = ""
        for kind, count in re.findall(r"([an])(\d+)", shapes[country]):
            pool = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if kind == "a" else "0123456789"
            bban += "".join(rng.choice(pool) for _ in range(int(count)))
        numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
        check = 98 - int(numeric) % 97
        iban = f"{country}{check:02d}{bban}"
        assert iban_valid(iban)
        out.append(iban if i % 2 else " ".join(iban[j : j + 4] for j in range(0, len(iban), 4)))
    return out


TEMPLATES = ["please use {} for this", "{}", "Contact: {}.", "my details ({}) are on file", "ref:{} thanks"]


def _embed(values: list[str]) -> list[tuple[str, str]]:
    return [(value, TEMPLATES[i % len(TEMPLATES)].format(value)) for i, value in enumerate(values)]


def _leaks(value: str, text: str) -> bool:
    """True when ``value`` survives in ``text``, as written or as its digits/characters run."""
    compact = re.sub(r"[\s().-]", "", value)
    return value in text or compact in re.sub(r"[\s().-]", "", text)


def test_generated_values_are_over_two_hundred_and_valid():
    """The generators give 220 values; every card passes Luhn and every IBAN passes mod-97."""
    cards, ibans = generated_cards(), generated_ibans()
    values = generated_emails() + generated_phones() + cards + ibans
    assert len(values) == 220 and len(set(values)) > 200
    assert all(luhn_valid(re.sub(r"\D", "", c)) for c in cards) and all(iban_valid(i) for i in ibans)


@pytest.mark.parametrize(
    "kind", ["emails", "phones", "cards", "ibans"],
)
def test_redact_removes_at_least_99_percent_of_each_kind(kind):
    """redact() (logs, audit trail) removes >= 99% of generated e-mails, phones, cards and IBANs."""
    values = {"emails": generated_emails, "phones": generated_phones, "cards": generated_cards,
              "ibans": generated_ibans}[kind]()
    leaked = [value for value, text in _embed(values) if _leaks(value, redact(text))]
    assert 1 - len(leaked) / len(values) >= 0.99, leaked


def test_cards_are_masked_at_intake_keeping_the_last_four():
    """mask_cards masks every generated card (>= 99%) as [card ending NNNN] with the right last four."""
    cards = generated_cards()
    missed = []
    for value, text in _embed(cards):
        masked = mask_cards(text)
        digits = re.sub(r"\D", "", value)
        if _leaks(value, masked) or f"[card ending {digits[-4:]}]" not in masked:
            missed.append(value)
    assert 1 - len(missed) / len(cards) >= 0.99, missed


@pytest.mark.parametrize(
    "text",
    [
        "order 123456 and order #98765432",
        "ORD-2024-001234 shipped on 2026-11-12 at 10:30",
        "invoice INV-5003 for $1,234.56 (12 seats)",
        "version 3.2.1, build 20261112, error 0x80070005",
        "tracking 1Z999AA10123456784",
        "ORD-4111111111111111 is our order reference",
        "4111 1111 1111 1112 is not a card",
        "phone +4111111111111111",
        "between 2019 and 2024 we paid 1299 per year",
    ],
)
def test_ordinary_numbers_are_not_masked_as_cards(text):
    """Order ids, dates, amounts, versions, tracking codes, ids glued to a prefix, phone numbers and
    card-shaped numbers that fail Luhn are left alone by the intake masking."""
    assert mask_cards(text) == text


def test_luhn_valid_groups_inside_a_longer_run_are_found():
    """A card written after other digit groups is masked alone; the other groups stay."""
    assert mask_cards("ref 12 4111 1111 1111 1111 ok") == "ref 12 [card ending 1111] ok"


def test_redact_keeps_ordinary_short_numbers():
    """Short order ids, ISO dates, decimals and invoice ids survive redaction."""
    text = "order 123456, INV-5003, 2026-11-12, 0.125 s, 12 seats"
    assert redact(text) == text


def test_search_query_keeps_the_question_and_drops_everything_personal():
    """scrub_search_query removes e-mails, phones, cards, IBANs, customer/invoice ids and long digit runs,
    and keeps the words of the question."""
    values = generated_emails(5) + generated_phones(5) + generated_cards(5) + generated_ibans(5)
    for value in values:
        scrubbed = scrub_search_query(f"I'm C-1001, invoice INV-5003, {value}: how do I export to PDF?")
        assert not _leaks(value, scrubbed), (value, scrubbed)
        assert "C-1001" not in scrubbed and "5003" not in scrubbed
        assert scrubbed.endswith("how do I export to PDF?")


def test_clean_text_removes_controls_zero_width_bidi_and_tag_characters():
    """Controls, escape sequences, zero-width characters, bidi overrides, BOM, soft hyphens, tag and
    variation-selector characters are removed; newlines stay unless single-line."""
    dirty = "pa\u200by\u200c\u200dment\u2060 \ufefffa\u00adiled\x07\x1b[0m \u202egnp.exe\u202c \U000e0041\ufe0f\r\nnext"
    assert clean_text(dirty) == "payment failed[0m gnp.exe \nnext"
    assert clean_text("a\tb\nc\u2028d", keep_newlines=False) == "a b c d"
    assert clean_text("plain text") == "plain text"


def test_package_log_records_are_redacted_and_host_records_are_not():
    """After install_log_redaction, records of any supportdesk.* logger reach every handler redacted
    (card, e-mail, phone, IBAN, traceback included); a host application's logger is untouched."""
    install_log_redaction()
    install_log_redaction()  # idempotent
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        child = logging.getLogger("supportdesk.some.lazily.created.module")
        child.info("customer %s at %s paid with %s from %s", "jane@example.com", "+44 20 7946 0958",
                   "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00")
        try:
            raise ValueError("card 5500-0000-0000-0004 for bob@example.org")
        except ValueError:
            child.exception("failed")
        logging.getLogger("hostapp.billing").info("host keeps %s", "host@example.com")
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    out = stream.getvalue()
    assert "customer [email] at [phone] paid with [card] from [iban]" in out
    assert "card [card] for [email]" in out
    for secret in ("jane@", "7946", "4111", "DE89", "5500", "bob@"):
        assert secret not in out
    assert "host keeps host@example.com" in out
    assert logging.getLogger().filters == []


def test_a_run_keeps_cards_everywhere_masked_and_personal_data_out_of_logs_audit_and_crewai(tmp_path, caplog):
    """One full run (scripted model, local stores): the card number is in no file under the home (journal,
    tickets, caches) nor in CrewAI's storage folder, which stays empty; the logs and the audit trail hold no
    e-mail, phone or IBAN of the query; checkpoint history keeps digests, not copies of the state."""
    import sqlite3

    from supportdesk import handle_query
    from supportdesk.durable import RunJournal
    from supportdesk.flows.services import build_services
    from supportdesk.llm import ScriptedModel
    from supportdesk.settings import Settings

    home = tmp_path / "home"
    settings = Settings(home=home)
    services = build_services(settings, chat_model=ScriptedModel([
        {"category": "billing", "priority": "high", "rationale": "A duplicate charge."},
        {"title": "Refund duplicate subscription charge"}]))
    card, email, phone, iban = "4111 1111 1111 1111", "zed.q@mailbox.example", "+44 20 7946 0958", "DE89 3704 0044 0532 0130 00"
    query = f"I was charged twice this month with card {card}; write to {email} or call {phone}, IBAN {iban}"
    with caplog.at_level(logging.DEBUG):
        state = handle_query(query, customer="maria.gonzalez@example.com", run_id="pii-1", settings=settings,
                             services=services)
    assert "[card ending 1111]" in state.original_query and card not in state.model_dump_json()
    files = [p for p in home.rglob("*") if p.is_file()]
    assert files and not any(b"4111 1111" in p.read_bytes() or b"4111111111111111" in p.read_bytes() for p in files)
    crewai = tmp_path / "crewai"  # CREWAI_STORAGE_DIR of the test (conftest)
    assert not crewai.exists() or not [p for p in crewai.rglob("*") if p.is_file()]
    logs = caplog.text + "".join(str(r.msg) for r in caplog.records)
    audit = repr([e.data for e in RunJournal(settings.resolved_database_url).audit("pii-1")])
    for secret in ("4111", email, "7946 0958", "DE89"):
        assert secret not in logs and secret not in audit
    with sqlite3.connect(home / "supportdesk.db") as conn:
        history = [row[0] for row in conn.execute("SELECT state_json FROM durable_checkpoints")]
    assert history and all(h.startswith("sha256:") for h in history)
