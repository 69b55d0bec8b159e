# ruff: noqa: E501 - the messages keep the long lines real clients write
"""Writes the corpus: raw messages shaped the way Outlook, Gmail, Apple Mail, Thunderbird and mobile
clients shape them, each with its expected outcome in expected.json. Run it to regenerate:

    .venv/bin/python tests/integrations/email/corpus/make_corpus.py

Placeholders the corpus test fills in before sending (ticket numbers and our own Message-IDs depend
on the database): ``{{ticket:NN}}`` the number of the ticket message NN made, ``{{ourid:NN}}`` a
Message-ID Cairn would send for that ticket.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DATE = "Tue, 17 Nov 2026 09:{:02d}:00 +0100"
messages: dict[str, bytes] = {}
expected: dict[str, dict] = {}


def b64(data: bytes) -> str:
    return "\r\n".join(base64.encodebytes(data).decode().split())


def add(name: str, raw: str | bytes, **expect):
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    messages[name] = data
    expected[name] = expect


n = iter(range(60))

# -- Outlook (desktop) new incident: multipart/alternative, Thread-Index, HTML with MSO markup.
add("01_outlook_new_incident", f"""Received: from mail.example.com (mail.example.com [192.0.2.10]) by mx.cairn.test
From: Alice Arnold <alice@example.com>
To: "IT Incidents" <incidents@cairn.test>
Subject: Cannot connect to VPN
Thread-Topic: Cannot connect to VPN
Thread-Index: AdlZ1x2R3Q5fJk3nQ0yWm3a0qk1pWw==
Date: {DATE.format(next(n))}
Message-ID: <AM0PR01MB1234ABCD@AM0PR01MB1234.eurprd01.prod.outlook.com>
Accept-Language: en-US
Content-Language: en-US
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
X-Mailer: Microsoft Outlook 16.0
MIME-Version: 1.0
Content-Type: multipart/alternative;
\tboundary="_000_AM0PR01MB1234ABCD_"

--_000_AM0PR01MB1234ABCD_
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Hi,

Since this morning the VPN client says "authentication failed" although my =
password works everywhere else.

Regards,
Alice

--_000_AM0PR01MB1234ABCD_
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html xmlns:o=3D"urn:schemas-microsoft-com:office:office"><head><style><!-- p.MsoNormal {{margin:0cm}} --></style></head>
<body lang=3D"EN-US"><div class=3D"WordSection1"><p class=3D"MsoNormal">Hi,</p><p class=3D"MsoNormal">Since this morning the VPN client says "authentication failed".</p></div></body></html>

--_000_AM0PR01MB1234ABCD_--
""", status="processed", outcome="new_ticket", kind="incident", title="Cannot connect to VPN",
    text=["authentication failed", "password works everywhere"])  # fmt: skip

# -- Gmail reply by In-Reply-To/References with the quote Gmail adds.
add("02_gmail_reply_references", f"""MIME-Version: 1.0
Date: {DATE.format(next(n))}
References: <AM0PR01MB1234ABCD@AM0PR01MB1234.eurprd01.prod.outlook.com>
In-Reply-To: <AM0PR01MB1234ABCD@AM0PR01MB1234.eurprd01.prod.outlook.com>
Message-ID: <CAF=k2Zq0y7bXg@mail.gmail.com>
Subject: Re: Cannot connect to VPN
From: Alice Arnold <alice@example.com>
To: incidents@cairn.test
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f60718"

--000000000000a1b2c3d4e5f60718
Content-Type: text/plain; charset="UTF-8"

I tried again after a reboot, same error.

On Tue, 17 Nov 2026 at 09:00, Alice Arnold <alice@example.com>
wrote:

> Hi,
>
> Since this morning the VPN client says "authentication failed"
>

--000000000000a1b2c3d4e5f60718
Content-Type: text/html; charset="UTF-8"

<div dir="ltr">I tried again after a reboot, same error.</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, 17 Nov 2026 at 09:00, Alice Arnold wrote:<br></div><blockquote class="gmail_quote">Hi,</blockquote></div>

--000000000000a1b2c3d4e5f60718--
""", status="processed", outcome="comment", ticket="01", text=["same error"],
    not_text=["Since this morning"])  # fmt: skip

# -- Apple Mail to the request address: routed to kind request and team Service Desk.
add("03_apple_mail_request", f"""From: Bob Brown <bob@example.com>
Content-Type: multipart/alternative;
\tboundary="Apple-Mail=_5B1C2D3E-4F50-6172-8394-A5B6C7D8E9F0"
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
Subject: New monitor for my desk
Message-Id: <7F3A1B2C-9D8E-4F60-A1B2-C3D4E5F60718@example.com>
Date: {DATE.format(next(n))}
To: requests@cairn.test
X-Mailer: Apple Mail (2.3774.600.62)

--Apple-Mail=_5B1C2D3E-4F50-6172-8394-A5B6C7D8E9F0
Content-Transfer-Encoding: quoted-printable
Content-Type: text/plain;
\tcharset=utf-8

Could I get a second 27=E2=80=9D monitor? My current one flickers.

Thanks, Bob
--Apple-Mail=_5B1C2D3E-4F50-6172-8394-A5B6C7D8E9F0
Content-Transfer-Encoding: quoted-printable
Content-Type: text/html;
\tcharset=utf-8

<html><head><meta http-equiv=3D"content-type" content=3D"text/html; charset=3Dutf-8"></head><body style=3D"overflow-wrap: break-word;">Could I get a second 27=E2=80=9D monitor?</body></html>
--Apple-Mail=_5B1C2D3E-4F50-6172-8394-A5B6C7D8E9F0--
""", status="processed", outcome="new_ticket", kind="request", team="Service Desk",
    title="New monitor for my desk", text=["27\u201d monitor"])  # fmt: skip

# -- Thunderbird with a PDF whose name is RFC 2231 encoded.
add("04_thunderbird_rfc2231_attachment", f"""Message-ID: <4b1f0c2e-8a11-4c3e-9d1f-2a6b7c8d9e0f@example.org>
Date: {DATE.format(next(n))}
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Content-Language: de-DE
To: incidents@cairn.test
From: Dora Decker <dora@example.org>
Subject: Rechnung kann nicht gedruckt werden
Content-Type: multipart/mixed; boundary="------------Wm9p3Fq2Lx8Kd0Rt4Yb6Nc1S"

This is a multi-part message in MIME format.
--------------Wm9p3Fq2Lx8Kd0Rt4Yb6Nc1S
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 8bit

Hallo, die Rechnung im Anhang lässt sich nicht drucken.

Grüße
Dora
--------------Wm9p3Fq2Lx8Kd0Rt4Yb6Nc1S
Content-Type: application/pdf;
 name*=UTF-8''Rechnung%20M%C3%A4rz.pdf
Content-Disposition: attachment;
 filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf
Content-Transfer-Encoding: base64

{b64(PDF)}
--------------Wm9p3Fq2Lx8Kd0Rt4Yb6Nc1S--
""", status="processed", outcome="new_ticket", title="Rechnung kann nicht gedruckt werden",
    text=["lässt sich nicht drucken"], attachments=["Rechnung März.pdf"])  # fmt: skip

# -- iPhone reply by subject tag only (no References), from the requester.
add("05_iphone_subject_tag_reply", f"""Content-Type: text/plain;
\tcharset=us-ascii
Content-Transfer-Encoding: 7bit
From: Alice Arnold <alice@example.com>
Mime-Version: 1.0 (1.0)
Date: {DATE.format(next(n))}
Subject: Re: [{{{{ticket:01}}}}] Cannot connect to VPN
Message-Id: <8C1D2E3F-4A5B-6C7D-8E9F-0A1B2C3D4E5F@example.com>
To: helpdesk@cairn.test
X-Mailer: iPhone Mail (21D61)

Works again from home, thanks!

Sent from my iPhone
""", status="processed", outcome="comment", ticket="01", text=["Works again from home"],
    not_text=["Sent from my iPhone"])  # fmt: skip

# -- Gmail on Android: base64 UTF-8 body, RFC 2047 subject.
subject = "Drucker im 3. Stock druckt nicht \u2013 dringend"
PRINTER_BODY = b64("Der Drucker zeigt \u201ePapierstau\u201c, aber es ist kein Papier drin.".encode())
OUTLOOK_IOS_BODY = b64(
    b"Tried on my phone as well, also fails.\n\nGet Outlook for iOS\n________________________________\n"
    b"From: Alice Arnold <alice@example.com>\nSent: Tuesday, November 17, 2026 9:01:00 AM\n"
    b"To: incidents@cairn.test\nSubject: Re: Cannot connect to VPN\n\nI tried again after a reboot\n"
)
add("06_android_rfc2047_subject", f"""MIME-Version: 1.0
Date: {DATE.format(next(n))}
Message-ID: <CAM3xY7pQ2=android@mail.gmail.com>
Subject: =?UTF-8?B?{base64.b64encode(subject.encode()).decode()}?=
From: =?UTF-8?Q?Erik_M=C3=BCller?= <erik@example.com>
To: incidents@cairn.test
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: base64

{PRINTER_BODY}
""", status="processed", outcome="new_ticket", title=subject, text=["Papierstau"])  # fmt: skip

# -- A requester quoting someone else's ticket number: no hijack, and no link to a ticket it may not
# see (the link would show that ticket on its own): a new ticket linked to nothing.
add("07_subject_tag_other_sender", f"""From: Carol Chen <carol@example.org>
To: incidents@cairn.test
Subject: [{{{{ticket:01}}}}] I have the same VPN problem
Date: {DATE.format(next(n))}
Message-ID: <20261117091500.carol.1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
User-Agent: Mozilla Thunderbird

Same here since 8am.
""", status="processed", outcome="new_ticket", related=None, title="I have the same VPN problem")  # fmt: skip

# -- Outlook out-of-office.
add("08_outlook_out_of_office", f"""From: Frank Fischer <frank@example.com>
To: helpdesk@cairn.test
Subject: Automatic reply: [{{{{ticket:01}}}}] Cannot connect to VPN
Thread-Topic: [{{{{ticket:01}}}}] Cannot connect to VPN
Date: {DATE.format(next(n))}
Message-ID: <oof.AM0PR01MB9999@AM0PR01MB9999.eurprd01.prod.outlook.com>
Auto-Submitted: auto-replied
X-MS-Exchange-Inbox-Rules-Loop: frank@example.com
X-Auto-Response-Suppress: All
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"

I am out of the office until Monday.
""", status="ignored", reason="auto-submitted")  # fmt: skip

add("09_newsletter_precedence_bulk", f"""From: Vendor News <news@example.com>
To: helpdesk@cairn.test
Subject: Our November product update
Date: {DATE.format(next(n))}
Message-ID: <news.20261117@mailer.example.com>
Precedence: bulk
List-Unsubscribe: <mailto:unsubscribe@example.com>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<p>New features!</p>
""", status="ignored", reason="precedence: bulk")  # fmt: skip

add("10_mailing_list", f"""From: Gina Gomez <gina@example.com>
To: it-all@lists.example.com
Cc: helpdesk@cairn.test
Subject: [it-all] Coffee machine
Date: {DATE.format(next(n))}
Message-ID: <list.0001@lists.example.com>
List-Id: IT all <it-all.lists.example.com>
Precedence: list
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Who broke the coffee machine?
""", status="ignored", reason="precedence: list")  # fmt: skip

add("11_x_loop", f"""From: Alerts <alerts@example.com>
To: incidents@cairn.test
Subject: Re: [{{{{ticket:01}}}}] Cannot connect to VPN
Date: {DATE.format(next(n))}
Message-ID: <loop.0001@example.com>
X-Loop: helpdesk@cairn.test
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Forwarded automatically.
""", status="ignored", reason="x-loop")  # fmt: skip

add("12_x_auto_response_suppress", f"""From: Hank Hill <hank@example.com>
To: incidents@cairn.test
Subject: Meeting room booked
Date: {DATE.format(next(n))}
Message-ID: <ars.0001@example.com>
X-Auto-Response-Suppress: DR, OOF, AutoReply
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Your booking is confirmed.
""", status="ignored", reason="x-auto-response-suppress")  # fmt: skip

add("13_from_own_address", f"""From: Cairn Helpdesk <helpdesk@cairn.test>
To: incidents@cairn.test
Subject: Something we sent ourselves
Date: {DATE.format(next(n))}
Message-ID: <own.0001@elsewhere.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Loop?
""", status="ignored", reason="own address")  # fmt: skip

add("14_own_message_id", f"""From: Alice Arnold <alice@example.com>
To: incidents@cairn.test
Subject: [{{{{ticket:01}}}}] Cannot connect to VPN
Date: {DATE.format(next(n))}
Message-ID: <{{{{ourid:01}}}}>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Our notification, bounced back verbatim by a forwarding rule.
""", status="ignored", reason="our own message")  # fmt: skip

add("15_dsn_bounce", f"""Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: helpdesk@cairn.test
Subject: Undelivered Mail Returned to Sender
Date: {DATE.format(next(n))}
Message-ID: <20261117.dsn.1@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="DSN.boundary.1"

--DSN.boundary.1
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

<gone@example.com>: host mx.example.com said: 550 5.1.1 User unknown

--DSN.boundary.1
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; gone@example.com
Original-Recipient: rfc822;gone@example.com
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--DSN.boundary.1
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: helpdesk@cairn.test
To: gone@example.com
Subject: [{{{{ticket:01}}}}] Cannot connect to VPN
Message-ID: <{{{{ourid:01}}}}>

--DSN.boundary.1--
""", status="ignored", reason="bounce", undeliverable=["gone@example.com"])  # fmt: skip

add("16_postmaster_sender", f"""From: postmaster@example.com
To: incidents@cairn.test
Subject: Quota warning
Date: {DATE.format(next(n))}
Message-ID: <pm.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Your mailbox is almost full.
""", status="ignored", reason="mailer-daemon")  # fmt: skip

# -- The first message delivered again (another Received line): stored once, no second ticket.
add("17_redelivered_duplicate", messages["01_outlook_new_incident"].replace(
    b"Received: from mail.example.com", b"Received: from backup-mx.example.com by mx2.cairn.test\r\nReceived: from mail.example.com"),
    duplicate_of="01")  # fmt: skip

add("18_no_message_id", f"""From: Ivan Ivanov <ivan@example.com>
To: incidents@cairn.test
Subject: Keyboard missing keys
Date: {DATE.format(next(n))}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

The E key fell off.
""", status="processed", outcome="new_ticket", title="Keyboard missing keys", text=["E key fell off"])  # fmt: skip

add("19_latin1_body", f"""From: Jana Jung <jana@example.com>
To: incidents@cairn.test
Subject: Outlook startet nicht
Date: {DATE.format(next(n))}
Message-ID: <latin1.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

""".encode() + "Outlook hängt beim Start.\n\nViele Grüße\nJana\n".encode("iso-8859-1"),
    status="processed", outcome="new_ticket", text=["hängt beim Start", "Grüße"])  # fmt: skip

add("20_lying_ascii_charset", f"""From: Karl Klein <karl@example.com>
To: incidents@cairn.test
Subject: Cafe wifi
Date: {DATE.format(next(n))}
Message-ID: <lying.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 8bit

The Café guest wifi is down.
""", status="processed", outcome="new_ticket", text=["Café guest wifi"])  # fmt: skip

add("21_unknown_charset", f"""From: Lena Lang <lena@example.com>
To: incidents@cairn.test
Subject: Zurich office printer
Date: {DATE.format(next(n))}
Message-ID: <unknown.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="x-unknown-8bit-foo"
Content-Transfer-Encoding: 8bit

Drucker in Zürich offline.
""", status="processed", outcome="new_ticket", text=["Zürich offline"])  # fmt: skip

add("22_no_charset_windows1252", f"""From: Mia Meyer <mia@example.com>
To: incidents@cairn.test
Subject: Invoice tool
Date: {DATE.format(next(n))}
Message-ID: <cp1252.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain
Content-Transfer-Encoding: 8bit

""".encode() + "The invoice tool shows \u201cError 42\u201d for amounts over \u20ac 500 since the update.\n".encode("cp1252"),
    status="processed", outcome="new_ticket", text=["invoice tool shows", "Error 42"])  # fmt: skip

add("23_invalid_utf8_and_nul", f"""From: Nina Novak <nina@example.com>
To: incidents@cairn.test
Subject: Broken bytes
Date: {DATE.format(next(n))}
Message-ID: <invalid.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

""".encode() + b"The export is broken \xff\xfe\x00 here \xc3\x28 and there.\x00\n",
    status="processed", outcome="new_ticket", text=["export is broken"])  # fmt: skip

add("24_missing_cte_8bit", f"""From: Otto Olsen <otto@example.com>
To: incidents@cairn.test
Subject: Naive question
Date: {DATE.format(next(n))}
Message-ID: <nocte.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

A naïve question about the façade camera.
""", status="processed", outcome="new_ticket", text=["naïve question", "façade"])  # fmt: skip

uu_body = "".join(binascii.b2a_uu(chunk).decode() for chunk in [b"ERROR disk full at 03:12\n", b"ERROR retry failed\n"])
add("25_uuencoded_attachment", f"""From: Paul Peters <paul@example.com>
To: incidents@cairn.test
Subject: Backup log
Date: {DATE.format(next(n))}
Message-ID: <uu.0001@example.com>
X-Mailer: Microsoft Outlook Express 6.00.2900.5512
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Log attached.

begin 644 backup.log
{uu_body}`
end
""", status="processed", outcome="new_ticket", text=["Log attached"], not_text=["begin 644"],
    attachments=["backup.log"])  # fmt: skip

add("26_html_only_hostile", f"""From: Quinn Quist <quinn@example.com>
To: incidents@cairn.test
Subject: Server down
Date: {DATE.format(next(n))}
Message-ID: <html.0001@example.com>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><head><style>body {{color: red}}</style><script>alert('x')</script></head>
<body onload="steal()"><h1>Server down</h1><p>The <b>intranet</b> answers 502.<img src="http://tracker.example/p.gif"></p>
<ul><li>since 10:00</li><li>all users</li></ul><a href="javascript:alert(1)">details</a></body></html>
""", status="processed", outcome="new_ticket", text=["Server down", "answers 502", "since 10:00"],
    not_text=["alert(", "color: red", "<b>"])  # fmt: skip

add("27_inline_cid_image_outlook", f"""From: Rita Ross <rita@example.com>
To: incidents@cairn.test
Subject: Error dialog screenshot
Date: {DATE.format(next(n))}
Message-ID: <DB9PR01MB5555@DB9PR01MB5555.eurprd01.prod.outlook.com>
X-Mailer: Microsoft Outlook 16.0
MIME-Version: 1.0
Content-Type: multipart/related; boundary="_004_rel_"; type="multipart/alternative"

--_004_rel_
Content-Type: multipart/alternative; boundary="_000_alt_"

--_000_alt_
Content-Type: text/plain; charset="us-ascii"

See the error below:
[cid:image001.png@01DA1234.56789ABC]

--_000_alt_
Content-Type: text/html; charset="us-ascii"

<html><body><p>See the error below:</p><img src="cid:image001.png@01DA1234.56789ABC"></body></html>

--_000_alt_--

--_004_rel_
Content-Type: image/png; name="image001.png"
Content-Description: image001.png
Content-Disposition: inline; filename="image001.png"
Content-ID: <image001.png@01DA1234.56789ABC>
Content-Transfer-Encoding: base64

{b64(PNG)}
--_004_rel_--
""", status="processed", outcome="new_ticket", text=["See the error below"], attachments=["image001.png"])  # fmt: skip

add("28_forwarded_rfc822", f"""From: Sam Stone <sam@example.com>
To: incidents@cairn.test
Subject: Fwd: Disk full on db-01
Date: {DATE.format(next(n))}
Message-ID: <fwd.0001@example.com>
User-Agent: Mozilla Thunderbird
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd-boundary"

--fwd-boundary
Content-Type: text/plain; charset=utf-8

Please look at the alert below.

--fwd-boundary
Content-Type: message/rfc822
Content-Disposition: attachment

From: monitor@example.com
To: sam@example.com
Subject: Disk full on db-01
Message-ID: <alert.777@monitor.example.com>
Date: Tue, 17 Nov 2026 07:00:00 +0100

/var is 100% full.

--fwd-boundary--
""", status="processed", outcome="new_ticket", title="Disk full on db-01", text=["Please look at the alert"],
    attachments=["Disk full on db-01.eml"])  # fmt: skip

add("29_unsafe_filenames", f"""From: Tina Taylor <tina@example.com>
To: incidents@cairn.test
Subject: Files
Date: {DATE.format(next(n))}
Message-ID: <unsafe.0001@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b29"

--b29
Content-Type: text/plain; charset=utf-8

Two files.

--b29
Content-Type: text/plain; name="../../etc/passwd"
Content-Disposition: attachment; filename="../../etc/passwd"

root:x:0:0
--b29
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="=?UTF-8?Q?invoice=E2=80=AEfdp.exe?="
Content-Transfer-Encoding: base64

{b64(b"MZ fake")}
--b29--
""", status="processed", outcome="new_ticket", attachments=["passwd", "invoicefdp.exe"])  # fmt: skip

add("30_unknown_domain", f"""From: Spammer <offers@evil.test>
To: incidents@cairn.test
Subject: Cheap licences
Date: {DATE.format(next(n))}
Message-ID: <spam.0001@evil.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Buy now.
""", status="ignored", reason="domain evil.test is not allowed")  # fmt: skip

add("31_ci_asset_tag", f"""From: Uwe Ulrich <uwe@example.com>
To: incidents@cairn.test
Subject: Laptop AST-10042 won't boot
Date: {DATE.format(next(n))}
Message-ID: <ci.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Black screen after the BIOS logo.
""", status="processed", outcome="new_ticket", cis=["asset:AST-10042"])  # fmt: skip

add("32_ci_hostname_and_serial", f"""From: Vera Voss <vera@example.com>
To: incidents@cairn.test
Subject: Slow web shop
Date: {DATE.format(next(n))}
Message-ID: <ci.0002@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

web-prod-01 is at 100% CPU, and the spare laptop (serial SN5CG1234XYZ) too.
Not web-prod-010 though.
""", status="processed", outcome="new_ticket", cis=["host:web-prod-01", "serial:SN5CG1234XYZ"])  # fmt: skip

add("33_ci_not_a_whole_word", f"""From: Walt White <walt@example.com>
To: incidents@cairn.test
Subject: Inventory question about AST-100420
Date: {DATE.format(next(n))}
Message-ID: <ci.0003@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Is xAST-10042 or AST-10042x ours?
""", status="processed", outcome="new_ticket", cis=[])  # fmt: skip

add("34_cc_staff_becomes_watcher", f"""From: Xena Xu <xena@example.com>
To: incidents@cairn.test
Cc: Agent Smith <agent@example.com>, Carol Chen <carol@example.org>
Subject: Projector in room 4 broken
Date: {DATE.format(next(n))}
Message-ID: <CAB+cc34@mail.gmail.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"

No picture, only a blue screen.
""", status="processed", outcome="new_ticket", watchers=["agent@example.com"])  # fmt: skip

add("35_cc_person_replies_by_references", f"""From: Carol Chen <carol@example.org>
To: Xena Xu <xena@example.com>, incidents@cairn.test
Subject: Re: Projector in room 4 broken
Date: {DATE.format(next(n))}
Message-ID: <20261117.carol.35@example.org>
In-Reply-To: <CAB+cc34@mail.gmail.com>
References: <CAB+cc34@mail.gmail.com>
User-Agent: Mozilla Thunderbird
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8; format=flowed

The HDMI cable is missing too.

On 17.11.26 09:33, Xena Xu wrote:
> No picture, only a blue screen.
""", status="processed", outcome="comment", ticket="34", text=["HDMI cable"], not_text=["blue screen"])  # fmt: skip

add("36_reply_to_resolved_reopens", f"""From: Bob Brown <bob@example.com>
To: requests@cairn.test
Subject: Re: [{{{{ticket:03}}}}] New monitor for my desk
Date: {DATE.format(next(n))}
Message-Id: <A1B2C3D4-reopen@example.com>
X-Mailer: Apple Mail (2.3774.600.62)
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
Content-Type: text/plain; charset=us-ascii

It still flickers, the new one has the same problem.

> On 17. Nov 2026, at 10:00, helpdesk@cairn.test wrote:
>
> REQ resolved.
""", before={"resolve": "03"}, status="processed", outcome="reopened", ticket="03", state="in_progress",
    text=["still flickers"])  # fmt: skip

add("37_reply_to_closed_opens_new", f"""MIME-Version: 1.0
Date: {DATE.format(next(n))}
In-Reply-To: <CAM3xY7pQ2=android@mail.gmail.com>
References: <CAM3xY7pQ2=android@mail.gmail.com>
Message-ID: <CAM3xY7pQ2=again@mail.gmail.com>
Subject: Re: Drucker im 3. Stock druckt nicht
From: =?UTF-8?Q?Erik_M=C3=BCller?= <erik@example.com>
To: incidents@cairn.test
Content-Type: text/plain; charset="UTF-8"

Schon wieder Papierstau.
""", before={"close": "06"}, status="processed", outcome="related_ticket", related="06",
    title="Drucker im 3. Stock druckt nicht")  # fmt: skip

add("38_outlook_reply_original_message", f"""From: Jana Jung <jana@example.com>
To: incidents@cairn.test
Subject: RE: Outlook startet nicht
Thread-Topic: Outlook startet nicht
Thread-Index: AdlZ1x2R3Q5fJk3nQ0yWm3a0qk1pWwABCDEF
Date: {DATE.format(next(n))}
Message-ID: <AM0PR01MB7777@AM0PR01MB7777.eurprd01.prod.outlook.com>
In-Reply-To: <latin1.0001@example.com>
X-Mailer: Microsoft Outlook 16.0
MIME-Version: 1.0
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

Safe mode helps, so it is an add-in.

-----Original Message-----
From: Jana Jung <jana@example.com>=20
Sent: Tuesday, November 17, 2026 9:18 AM
To: incidents@cairn.test
Subject: Outlook startet nicht

Outlook h=E4ngt beim Start.
""", status="processed", outcome="comment", ticket="19", text=["Safe mode helps"], not_text=["Original Message"])  # fmt: skip

add("39_german_aw_prefix_thunderbird", f"""Message-ID: <aw.0001@example.com>
Date: {DATE.format(next(n))}
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Subject: AW: WG: [{{{{ticket:19}}}}] Outlook startet nicht
From: Jana Jung <jana@example.com>
To: helpdesk@cairn.test
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit

Das Add-in ist deaktiviert, jetzt geht es.

Am 17.11.2026 um 09:40 schrieb Cairn Helpdesk:
> ##- Please type your reply above this line -##
""", status="processed", outcome="comment", ticket="19", text=["Add-in ist deaktiviert"], not_text=["schrieb"])  # fmt: skip

add("40_staff_reply_sv_prefix", f"""From: Agent Smith <agent@example.com>
To: helpdesk@cairn.test
Subject: SV: [{{{{ticket:04}}}}] Rechnung kann nicht gedruckt werden
Date: {DATE.format(next(n))}
Message-ID: <staff.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Please try printing from another PDF viewer.
""", status="processed", outcome="comment", ticket="04", text=["another PDF viewer"])  # fmt: skip

add("41_attachment_over_cap", f"""From: Yusuf Yilmaz <yusuf@example.com>
To: incidents@cairn.test
Subject: Huge dump
Date: {DATE.format(next(n))}
Message-ID: <big.0001@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b41"

--b41
Content-Type: text/plain; charset=utf-8

Core dump attached.

--b41
Content-Type: application/octet-stream; name="core.dump"
Content-Disposition: attachment; filename="core.dump"
Content-Transfer-Encoding: base64

{b64(bytes(range(256)) * 1200)}
--b41
Content-Type: text/plain; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

small file
--b41--
""", status="processed", outcome="new_ticket", attachments=["notes.txt"], text=["not stored", "core.dump"])  # fmt: skip

add("42_two_from_addresses", f"""From: a@example.com, b@example.com
To: incidents@cairn.test
Subject: Who sent this
Date: {DATE.format(next(n))}
Message-ID: <twofrom.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

?
""", status="ignored", reason="no single valid sender")  # fmt: skip

add("43_apple_mail_text_around_inline_image", f"""From: Zoe Zimmer <zoe@example.com>
Content-Type: multipart/mixed;
\tboundary="Apple-Mail=_43"
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
Subject: Cracked screen
Message-Id: <43-apple@example.com>
Date: {DATE.format(next(n))}
To: incidents@cairn.test
X-Mailer: Apple Mail (2.3774.600.62)

--Apple-Mail=_43
Content-Transfer-Encoding: 7bit
Content-Type: text/plain;
\tcharset=us-ascii

Before the photo.

--Apple-Mail=_43
Content-Disposition: inline;
\tfilename=IMG_0042.png
Content-Type: image/png;
\tx-unix-mode=0644;
\tname="IMG_0042.png"
Content-Transfer-Encoding: base64

{b64(PNG)}
--Apple-Mail=_43
Content-Transfer-Encoding: 7bit
Content-Type: text/plain;
\tcharset=us-ascii

After the photo.
--Apple-Mail=_43--
""", status="processed", outcome="new_ticket", text=["Before the photo", "After the photo"],
    attachments=["IMG_0042.png"])  # fmt: skip

add("44_outlook_ios_reply", f"""From: Alice Arnold <alice@example.com>
To: "incidents@cairn.test" <incidents@cairn.test>
Subject: Re: Cannot connect to VPN
Date: {DATE.format(next(n))}
Message-ID: <BY5PR01MB4444@BY5PR01MB4444.namprd01.prod.outlook.com>
In-Reply-To: <CAF=k2Zq0y7bXg@mail.gmail.com>
References: <AM0PR01MB1234ABCD@AM0PR01MB1234.eurprd01.prod.outlook.com> <CAF=k2Zq0y7bXg@mail.gmail.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: base64

{OUTLOOK_IOS_BODY}
""", status="processed", outcome="comment", ticket="01", text=["also fails"], not_text=["Sent: Tuesday", "Get Outlook"])  # fmt: skip

add("45_vacation_null_return_path", f"""Return-Path: <>
From: Bert Berg <bert@example.com>
To: incidents@cairn.test
Subject: On vacation
Date: {DATE.format(next(n))}
Message-ID: <vac.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

I am on vacation.
""", status="ignored", reason="null return path")  # fmt: skip

add("46_quoted_printable_soft_breaks_qp_subject", f"""From: =?iso-8859-1?Q?J=FCrgen_K=F6nig?= <juergen@example.com>
To: incidents@cairn.test
Subject: =?iso-8859-1?Q?Passwort_zur=FCcksetzen?=
Date: {DATE.format(next(n))}
Message-ID: <qp.0001@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Bitte mein Passwort zur=FCcksetzen, ich bin ausgesperrt und kann mich seit=
 gestern nicht mehr anmelden.
""", status="processed", outcome="new_ticket", title="Passwort zurücksetzen",
    text=["seit gestern nicht mehr anmelden"])  # fmt: skip


def main() -> None:
    for old in HERE.glob("*.eml"):
        old.unlink()
    for name, data in messages.items():
        (HERE / f"{name}.eml").write_bytes(data)
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(messages)} messages written to {HERE}")


if __name__ == "__main__":
    main()
