"""Parsing, sanitising and threading helpers on their own: the caps, the quote stripping, the keys,
our signed Message-IDs, subject prefixes."""

from __future__ import annotations

import pytest

from integrations.email import parse


def test_message_key_is_the_message_id_or_a_header_hash():
    with_id = b"From: a@example.com\r\nMessage-ID:  <X1@Example.com> \r\n\r\nbody"
    assert parse.message_key(with_id) == ("X1@Example.com", "X1@Example.com")
    without = b"From: a@example.com\r\nSubject: s\r\n\r\nbody one"
    key, message_id = parse.message_key(without)
    assert message_id is None and key.startswith("sha256:")
    assert parse.message_key(b"From: a@example.com\r\nSubject: s\r\n\r\nbody two")[0] == key  # headers only
    long_id = b"Message-ID: <" + b"a" * 400 + b"@x>\r\n\r\n"
    assert parse.message_key(long_id)[0].startswith("sha256:")


def test_html_is_capped_before_sanitising_and_time_capped():
    big = "<p>" + "word " * 100_000 + "</p><script>evil()</script>"
    safe, text, notes = parse.sanitise_html(big, max_bytes=10_000, seconds=5)
    assert len(safe) <= 10_100 and "evil" not in safe and any("cut to 10000 bytes" in n for n in notes)
    safe, text, notes = parse.sanitise_html("<b>x</b>" * 200_000, max_bytes=10**7, seconds=0.000001)
    assert safe == "" and "x" in text and "<b>" not in text
    assert any("took too long" in n for n in notes)


def test_html_to_text_keeps_structure_and_drops_markup():
    safe, text, _ = parse.sanitise_html(
        "<style>p{}</style><h1>Title</h1><p>One<br>Two</p><ul><li>a</li><li>b</li></ul>"
        '<a href="javascript:x()">link</a><img src=x onerror=alert(1)>',
        max_bytes=10_000,
        seconds=2,
    )
    assert "javascript" not in safe and "onerror" not in safe
    assert text.splitlines()[:3] == ["Title", "", "One"] and "- a" in text and "p{}" not in text


@pytest.mark.parametrize(
    ("body", "kept", "dropped"),
    [
        ("New text\n\nOn Tue, 17 Nov 2026 at 09:00, A <a@x>\nwrote:\n> old", "New text", "old"),
        ("Neu\n\nAm 17.11.2026 um 09:40 schrieb Cairn:\n> alt", "Neu", "alt"),
        ("Top\n\n-----Original Message-----\nFrom: x\nSent: y\n\nold", "Top", "old"),
        ("Top\n\n________________________________\nFrom: x\nSent: y\nold", "Top", "old"),
        ("Short\n\nSent from my iPhone", "Short", "iPhone"),
        ("Answer\n> quoted\n> more", "Answer", "quoted"),
        ("Hi\n##- Please type your reply above this line -##\nold", "Hi", "old"),
    ],
)
def test_strip_quoted(body, kept, dropped):
    new = parse.strip_quoted(body)
    assert kept in new and dropped not in new


def test_strip_quoted_never_returns_nothing():
    assert parse.strip_quoted("> only a quote") == "> only a quote"


def test_safe_filename():
    assert parse.safe_filename("../../etc/passwd") == "passwd"
    assert parse.safe_filename("C:\\Windows\\evil.bat") == "evil.bat"
    assert parse.safe_filename("in\u202evoice.exe") == "invoice.exe"
    assert parse.safe_filename('a"b<c>.txt\x00') == "a_b_c_.txt_"
    assert parse.safe_filename("...") == "attachment"
    assert len(parse.safe_filename("x" * 500 + ".pdf")) <= 150 and parse.safe_filename("x" * 500 + ".pdf").endswith(
        ".pdf"
    )


def test_decode_bytes_handles_lies_and_unknowns():
    assert parse.decode_bytes("Grüße".encode("latin-1"), "iso-8859-1") == "Grüße"
    assert parse.decode_bytes("Grüße".encode(), "us-ascii") == "Grüße"
    assert parse.decode_bytes("Grüße".encode(), "no-such-charset") == "Grüße"
    assert "\x00" not in parse.decode_bytes(b"a\x00b\xff", "utf-8")


def test_raw_8bit_headers_and_bad_encoded_words_do_not_break_parsing():
    raw = (
        "From: Jürgen <j@example.com>\r\nSubject: Grüße =?x-unknown?Q?abc?= =?utf-8?B?!!!?=\r\n"
        "Message-ID: <h@example.com>\r\n\r\nbody\r\n"
    ).encode()
    mail = parse.parse_message(raw)
    assert mail.from_address == "j@example.com" and mail.subject.startswith("Grüße")


def test_our_message_ids_are_signed(app):
    from integrations.email.threading import clean_subject, new_message_id, own_ticket_of, subject_tag

    with app.app_context():
        message_id = new_message_id(42)
        assert own_ticket_of(message_id) == 42
        forged = message_id.replace("cairn.42.", "cairn.43.")
        assert own_ticket_of(forged) is None
    assert subject_tag("AW: WG: [ inc0000042 ] Drucker") == "INC0000042"
    assert subject_tag("Re: [REQ#17] x") == "REQ0000017"
    assert subject_tag("INC0000042 without brackets") is None
    assert clean_subject("Re: AW: Fwd: SV: [INC0000042] Printer") == "Printer"
    assert clean_subject("RE[2]: Vs: Printer") == "Printer"
