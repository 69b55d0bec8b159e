"""Text that came out garbled on real-world mail: charsets without (usable) labels, angle-bracketed
plain text in HTML bodies, Unicode spaces in file names, and the reply headers and quote styles of
the common clients in several languages. Each message is written here as the raw bytes a client sends."""

from __future__ import annotations

import base64

import pytest

from integrations.email import parse

HEAD = "From: Alice <alice@example.com>\r\nTo: incidents@cairn.test\r\nMessage-ID: <{}@example.com>\r\n"


def text_mail(body: bytes, content_type: str = "text/plain", cte: str = "8bit", subject: bytes = b"s") -> bytes:
    return (
        HEAD.format("t").encode()
        + b"Subject: "
        + subject
        + f"\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode()
        + body
        + b"\r\n"
    )


# ---------------------------------------------------------------------------------------------
# 15. Charsets


def test_no_charset_is_utf8_then_windows_1252_never_a_guessed_codepage():
    french = "Bonjour, le problème de l'imprimante est réglé. Ça va très bien, merci.".encode("cp1252")
    assert parse.parse_message(text_mail(french)).text.startswith("Bonjour, le problème de l'imprimante est réglé")
    assert parse.decode_bytes("été".encode("cp1252")) == "été"  # was CJK
    assert parse.decode_bytes(b"\x93Error 42\x94 for \x80 500") == "\u201cError 42\u201d for \u20ac 500"
    # Cyrillic UTF-8 with one broken byte stays Cyrillic (was Latin-1 mojibake), the byte as U+FFFD.
    cyrillic = "Привет, как дела? Всё хорошо.".encode() + b"\xff"
    assert parse.decode_bytes(cyrillic) == "Привет, как дела? Всё хорошо.\ufffd"
    assert parse.parse_message(text_mail("Отчёт во вложении".encode())).text == "Отчёт во вложении"
    # The five bytes Windows-1252 leaves undefined never make decoding fail.
    assert parse.decode_bytes(b"a\x81b\xe9") == "a\x81bé"


def test_declared_latin1_is_windows_1252_and_a_lying_ascii_counts_as_none():
    assert parse.decode_bytes(b"\x93quoted\x94 \x80 caf\xe9", "iso-8859-1") == "\u201cquoted\u201d \u20ac café"
    assert parse.decode_bytes("Grüße".encode("cp1252"), "us-ascii") == "Grüße"
    assert parse.decode_bytes("Grüße".encode(), "us-ascii") == "Grüße"


def test_charset_aliases_python_lacks_and_supersets():
    hebrew = "שלום עולם".encode("iso-8859-8")
    for label in ("iso-8859-8-i", "ISO-8859-8-I", "iso-8859-8-e", '"iso-8859-8-i"'):
        assert parse.decode_bytes(hebrew, label) == "שלום עולם", label
    body = base64.b64encode(hebrew).decode()
    raw = text_mail(body.encode(), 'text/plain; charset="iso-8859-8-i"', "base64")
    raw = raw.replace(b"Subject: s", b"Subject: =?iso-8859-8-i?B?" + base64.b64encode(hebrew) + b"?=")
    mail = parse.parse_message(raw)
    assert mail.text == "שלום עולם" and mail.subject == "שלום עולם"
    korean = "안녕하세요 똠방각하".encode("cp949")  # "똠" is outside EUC-KR
    assert parse.decode_bytes(korean, "ks_c_5601-1987") == "안녕하세요 똠방각하"
    assert parse.decode_bytes("안녕하세요".encode("euc-kr"), "ks_c_5601-1987") == "안녕하세요"
    gbk_only = "打印机坏了 镕".encode("gbk")  # "镕" is GBK, not GB2312
    with pytest.raises(UnicodeDecodeError):
        gbk_only.decode("gb2312")
    assert parse.decode_bytes(gbk_only, "gb2312") == "打印机坏了 镕"
    assert parse.decode_bytes("打印机".encode("gb2312"), "GB2312") == "打印机"


def test_impossible_charset_names_fall_back_as_if_none_was_given():
    for label in ("text/html", "x-unknown", "base64", "unicode_escape", "undefined", "", None):
        assert parse.decode_bytes("Zürich \\n".encode("cp1252"), label) == "Zürich \\n", label
        assert parse.decode_bytes("Zürich".encode(), label) == "Zürich", label
    raw = text_mail("Drucker in Zürich".encode("cp1252"), 'text/plain; charset="text/html"')
    assert parse.parse_message(raw).text == "Drucker in Zürich"


def test_invalid_bytes_in_declared_utf8_become_replacement_characters():
    assert parse.decode_bytes(b"caf\xe9 ol\xc3\xa9", "utf-8") == "caf\ufffd olé"
    assert parse.decode_bytes(b"na\xefve", "UTF-8") == "na\ufffdve"
    assert parse.parse_message(text_mail(b"Export \xff\xfe broken", "text/plain; charset=utf-8")).text == (
        "Export \ufffd\ufffd broken"
    )


def test_bom_and_control_characters_are_stripped_but_tab_and_newlines_kept():
    data = b"\xef\xbb\xbfLine\x00 one\x07\x1b[0m\r\nTwo\tcols\x0b\x0c\rThree\x7f\n"
    assert parse.decode_bytes(data) == "Line one[0m\nTwo\tcols\nThree\n"
    assert parse.decode_bytes(data, "utf-8") == "Line one[0m\nTwo\tcols\nThree\n"
    assert parse.decode_bytes("\ufeffBOM".encode("utf-16"), "utf-16") == "BOM"
    assert parse.parse_message(text_mail(b"\xef\xbb\xbfHello\r\n\r\nWorld")).text == "Hello\n\nWorld"


def test_raw_8bit_headers_are_decoded_like_bodies():
    raw = (
        "From: René Müller <rene@example.com>\r\nTo: incidents@cairn.test\r\n"
        "Subject: Réunion à côté =?utf-8?Q?=E2=80=93_salle?= 3\r\nMessage-ID: <h1@example.com>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
        "--BB\r\nContent-Type: text/plain\r\n\r\nVoir pièce jointe\r\n"
        '--BB\r\nContent-Type: application/pdf; name="Procès-verbal.pdf"\r\n'
        'Content-Disposition: attachment; filename="Procès-verbal.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        "JVBERi0=\r\n--BB--\r\n"
    ).encode("cp1252")
    mail = parse.parse_message(raw)
    assert mail.subject == "Réunion à côté – salle 3"
    assert (mail.from_name, mail.from_address) == ("René Müller", "rene@example.com")
    assert mail.text == "Voir pièce jointe"
    assert [a.filename for a in mail.attachments] == ["Procès-verbal.pdf"]
    utf8 = raw.decode("cp1252").encode()
    mail = parse.parse_message(utf8)
    assert mail.subject == "Réunion à côté – salle 3" and mail.from_name == "René Müller"
    assert [a.filename for a in mail.attachments] == ["Procès-verbal.pdf"]
    cyrillic = "From: Иван Петров <ivan@example.com>\r\nSubject: Отчёт\x07 за\tноябрь\r\n\r\nx\r\n".encode()
    mail = parse.parse_message(cyrillic)
    assert (mail.from_name, mail.subject) == ("Иван Петров", "Отчёт за ноябрь")


# ---------------------------------------------------------------------------------------------
# 16. HTML to text


def test_html_keeps_angle_bracketed_urls_and_addresses_as_text():
    markup = (
        "<html><body><p>See a link <https://example.org/help?a=1&amp;b=2> for details.</p>"
        "<p>Or write to <tech@example.org> or <mailto:desk@example.org>.</p>"
        "<o:p></o:p><!-- note@example.org --><p>Real <b>tags</b> <a href='mailto:x@example.org'>go</a>.</p>"
        "</body></html>"
    )
    safe, text, _ = parse.sanitise_html(markup, max_bytes=100_000, seconds=5)
    assert "See a link <https://example.org/help?a=1&b=2> for details." in text
    assert "Or write to <tech@example.org> or <mailto:desk@example.org>." in text
    assert "Real tags go." in text and "note@example.org" not in text and "<b>" not in text
    assert "&lt;tech@example.org&gt;" in safe
    assert parse.html_to_text("a link <https://example.org>") == "a link <https://example.org>"
    # The crude fallback when the sanitiser overruns keeps them too.
    _, crude, notes = parse.sanitise_html(markup + "<b>x</b>" * 50_000, max_bytes=10**7, seconds=0.000001)
    assert any("took too long" in n for n in notes) and "<tech@example.org>" in crude
    raw = text_mail(markup.encode(), "text/html; charset=utf-8")
    assert "<tech@example.org>" in parse.parse_message(raw).text


# ---------------------------------------------------------------------------------------------
# 17. File names


@pytest.mark.parametrize("space", ["\u00a0", "\u2000", "\u2007", "\u2009", "\u200a", "\u202f", "\u3000"])
def test_unicode_spaces_in_file_names_become_spaces(space):
    assert parse.safe_filename(f"DUC_SING{space}WAH{space}PAN.pdf") == "DUC_SING WAH PAN.pdf"
    assert parse.safe_filename(f"{space}report.pdf{space}") == "report.pdf"


def test_no_break_space_in_an_attachment_name_survives_storing(post_mail, client, admin):
    from tickets import services

    encoded = "=?utf-8?Q?DUC=5FSING=C2=A0WAH=C2=A0PAN.pdf?="
    raw = (
        HEAD.format("nbsp") + "Subject: Invoice\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n"
        f'--BB\r\nContent-Type: application/pdf; name="{encoded}"\r\n'
        f"Content-Disposition: attachment; filename*=utf-8''DUC_SING%C2%A0WAH%C2%A0PAN.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--BB--\r\n"
    ).encode()
    assert [a.filename for a in parse.parse_message(raw).attachments] == ["DUC_SING WAH PAN.pdf"]
    result = post_mail(raw)
    detail = client.get(f"/api/v1/inbound-email/{result['id']}", headers=admin).get_json()
    ticket = services.get_ticket(detail["ticket_id"])
    assert [a.filename for a in services.attachments_of(ticket)] == ["DUC_SING WAH PAN.pdf"]


# ---------------------------------------------------------------------------------------------
# 18. Quotes

NOTIFICATION = "##- Please type your reply above this line -##\n\nINC0000042 was updated: old news\n\n--\nINC0000042"


def quoted(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


@pytest.mark.parametrize(
    "body",
    [
        # English: Gmail, Apple Mail, Thunderbird; on one line and wrapped over two.
        f"Fixed now.\n\nOn Tue, 17 Nov 2026 at 09:00, Cairn <helpdesk@cairn.test> wrote:\n\n{quoted(NOTIFICATION)}",
        f"Fixed now.\n\nOn Tue, 17 Nov 2026 at 09:00, Cairn Service Desk <helpdesk@cairn.test>\nwrote:\n"
        f"{quoted(NOTIFICATION)}",
        f"Fixed now.\n\nOn 17/11/2026 09:00, Cairn wrote:\n{quoted(NOTIFICATION)}\n",
        # French: Gmail (no-break spaces), Thunderbird, wrapped, and Outlook's block with " :".
        f"Fixed now.\n\nLe mar. 17 nov. 2026 à 09:00, Cairn <helpdesk@cairn.test> a\u00a0écrit\u00a0:\n"
        f"{quoted(NOTIFICATION)}",
        f"Fixed now.\n\nLe 17/11/2026 à 09:00, Cairn a écrit :\n{quoted(NOTIFICATION)}",
        f"Fixed now.\n\nLe mar. 17 nov. 2026 à 09:00, Cairn Service Desk <helpdesk@cairn.test> a\nécrit :\n"
        f"{quoted(NOTIFICATION)}",
        "Fixed now.\n\nDe : Cairn <helpdesk@cairn.test>\nEnvoyé : mardi 17 novembre 2026 09:00\n"
        f"À : Alice <alice@example.com>\nObjet : RE: [INC0000042] Printer\n\n{NOTIFICATION}",
        "Fixed now.\n\nDe\u00a0: Cairn <helpdesk@cairn.test>\nEnvoyé\u00a0: mardi 17 novembre 2026 09:00\n"
        f"Objet\u00a0: [INC0000042] Printer\n\n{NOTIFICATION}",
        # German: Thunderbird/Gmail and Outlook.
        f"Fixed now.\n\nAm 17.11.2026 um 09:00 schrieb Cairn:\n{quoted(NOTIFICATION)}",
        f"Fixed now.\n\nAm Di., 17. Nov. 2026 um 09:00 Uhr schrieb Cairn <helpdesk@cairn.test>:\n\n"
        f"{quoted(NOTIFICATION)}",
        "Fixed now.\n\nVon: Cairn <helpdesk@cairn.test>\nGesendet: Dienstag, 17. November 2026 09:00\n"
        f"An: Alice\nBetreff: AW: [INC0000042] Drucker\n\n{NOTIFICATION}",
        # Spanish: Gmail and Outlook.
        f"Fixed now.\n\nEl mar, 17 nov 2026 a las 9:00, Cairn (<helpdesk@cairn.test>) escribió:\n"
        f"{quoted(NOTIFICATION)}",
        "Fixed now.\n\nDe: Cairn <helpdesk@cairn.test>\nEnviado: martes, 17 de noviembre de 2026 9:00\n"
        f"Para: Alice\nAsunto: RE: [INC0000042] Impresora\n\n{NOTIFICATION}",
        "Fixed now.\n\nDe: Cairn <helpdesk@cairn.test>\nEnviado el: martes, 17 de noviembre de 2026 9:00\n"
        f"Para: Alice\nAsunto: RE: [INC0000042] Impresora\n\n{NOTIFICATION}",
        # Portuguese: Gmail and Outlook.
        f"Fixed now.\n\nEm ter., 17 de nov. de 2026 às 09:00, Cairn <helpdesk@cairn.test> escreveu:\n\n"
        f"{quoted(NOTIFICATION)}",
        "Fixed now.\n\nDe: Cairn <helpdesk@cairn.test>\nEnviada: terça-feira, 17 de novembro de 2026 09:00\n"
        f"Para: Alice\nAssunto: RE: [INC0000042] Impressora\n\n{NOTIFICATION}",
        # Outlook in English, with and without the "Original Message" line and the rule.
        "Fixed now.\n\nFrom: Cairn <helpdesk@cairn.test>\nSent: Tuesday, November 17, 2026 9:00 AM\n"
        f"To: Alice\nSubject: RE: [INC0000042] Printer\n\n{NOTIFICATION}",
        f"Fixed now.\n\n-----Original Message-----\nFrom: Cairn <helpdesk@cairn.test>\nSent: Tuesday\n\n{NOTIFICATION}",
        "Fixed now.\n\n-----Mensagem original-----\nDe: Cairn\nEnviada em: terça-feira\n\n" + NOTIFICATION,
        "Fixed now.\n\n________________________________\nFrom: Cairn <helpdesk@cairn.test>\n"
        f"Sent: Tuesday, November 17, 2026 9:00 AM\n{NOTIFICATION}",
        "Fixed now.\n\n*From:* Cairn <helpdesk@cairn.test>\n*Sent:* Tuesday\n*To:* Alice\n\n" + NOTIFICATION,
        # Our own marker, with no reply header at all (a client that quotes without one).
        "Fixed now.\n\n" + NOTIFICATION,
        # Top-posted above a ">" quote without a reply header.
        f"Fixed now.\n\n{quoted(NOTIFICATION)}\n",
    ],
)
def test_reply_headers_of_common_clients_cut_the_quote(body):
    new = parse.strip_quoted(body)
    assert new == "Fixed now.", new


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Thunderbird bottom-posting: the reply header and quote first, the user's text below.
        (
            f"On 17/11/2026 09:00, Cairn wrote:\n{quoted(NOTIFICATION)}\n\nFixed now.\nThanks, Alice\n",
            "Fixed now.\nThanks, Alice",
        ),
        (f"Le 17/11/2026 à 09:00, Cairn a écrit :\n{quoted(NOTIFICATION)}\n\nC'est réparé.", "C'est réparé."),
        (f"{quoted(NOTIFICATION)}\n\nFixed now.", "Fixed now."),  # no reply header
        # Interleaved: the user's answers between the quoted parts are kept, the quotes dropped.
        (
            "On Tue, 17 Nov 2026 at 09:00, Cairn <helpdesk@cairn.test> wrote:\n"
            "> Which printer?\n\nThe one on floor 3.\n\n> Since when?\n\nSince Monday.\n\n> --\n> INC0000042\n",
            "The one on floor 3.\n\nSince Monday.",
        ),
        # Bottom-posted from a phone: the signature goes too.
        (
            f"Am 17.11.2026 um 09:00 schrieb Cairn:\n{quoted(NOTIFICATION)}\n\nGeht wieder.\n\n"
            "Von meinem iPhone gesendet",
            "Geht wieder.",
        ),
    ],
)
def test_bottom_posted_and_interleaved_replies_keep_the_users_text(body, expected):
    assert parse.strip_quoted(body) == expected


def test_strip_quoted_keeps_what_only_looks_like_a_quote():
    # A sentence that starts like a reply header but is the user's own text (no date, text follows).
    text = "On Monday the printer wrote: error 42\nPlease help."
    assert parse.strip_quoted(text) == text
    # ">" lines between the user's own lines, without any reply header (a pasted Python session).
    session = "It fails like this:\n>>> import printer\nImportError\nAny idea?"
    assert parse.strip_quoted(session) == session
    assert parse.strip_quoted("> only a quote") == "> only a quote"


def test_a_bottom_posted_reply_becomes_a_comment_without_the_quote(post_mail, client, admin, db):
    from tickets.models import TicketComment

    first = post_mail(text_mail(b"The printer is jammed.", "text/plain; charset=utf-8"))
    reply = (
        b"From: Alice <alice@example.com>\r\nTo: incidents@cairn.test\r\nSubject: Re: s\r\n"
        b"Message-ID: <reply@example.com>\r\nIn-Reply-To: <t@example.com>\r\nReferences: <t@example.com>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
        b"On 17/11/2026 09:00, Alice wrote:\r\n> The printer is jammed.\r\n\r\nIt works again.\r\n"
    )
    result = post_mail(reply)
    detail = client.get(f"/api/v1/inbound-email/{result['id']}", headers=admin).get_json()
    assert (
        detail["outcome"] == "comment"
        and detail["ticket_id"]
        == (client.get(f"/api/v1/inbound-email/{first['id']}", headers=admin).get_json()["ticket_id"])
    )
    assert db.session.get(TicketComment, detail["comment_id"]).body == "It works again."
