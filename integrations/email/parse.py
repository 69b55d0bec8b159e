"""Raw RFC 5322 bytes to a ParsedMail, robust to what real mail is.

The standard library parses (``policy.default``); everything that can be wrong in real mail is
handled here so that no single message can make processing crash: undecodable or lying charsets
(charset-normalizer guesses), NUL bytes, raw 8-bit headers, a missing Content-Transfer-Encoding,
uuencoded bodies, HTML-only mail (size-capped, then sanitised by nh3 under a time cap, then turned
into text), inline ``cid:`` images, RFC 2231 file names, forwarded ``message/rfc822`` and DSNs.
"""

from __future__ import annotations

import binascii
import concurrent.futures
import hashlib
import html
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from html.parser import HTMLParser

import nh3

MAX_MESSAGE_ID = 255
MAX_REFERENCES = 50
DEFAULT_HTML_MAX_BYTES = 1024 * 1024
DEFAULT_HTML_SECONDS = 2.0
TEXT_MAX_CHARS = 200_000
_SANITIZER = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="cairn-nh3")


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None


@dataclass
class Dsn:
    """What a delivery status notification says: who failed, and which message of ours bounced."""

    recipients: list[str] = field(default_factory=list)
    action: str = ""
    status: str = ""
    original_message_id: str | None = None


@dataclass
class ParsedMail:
    message_id: str | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_address: str | None = None
    from_name: str = ""
    from_count: int = 0
    reply_to: list[str] = field(default_factory=list)
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    delivered_to: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)
    dsn: Dsn | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Keys for storing (cheap: headers only)

_MSGID = re.compile(r"<([^<>\s]{1,998})>")


def header_block(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end != -1:
            return raw[:end]
    return raw


def message_key(raw: bytes) -> tuple[str, str | None]:
    """(dedup key, Message-ID or None): the Message-ID when present, else a hash of the headers."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(header_block(raw)[: 256 * 1024])
    ids = parse_ids(_raw_header(headers, "Message-ID"))
    if ids:
        message_id = ids[0]
        key = message_id if len(message_id) <= MAX_MESSAGE_ID else "sha256:" + _sha(message_id.encode())
        return key, message_id[:MAX_MESSAGE_ID]
    return "sha256:" + _sha(header_block(raw)), None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_ids(value: str | None) -> list[str]:
    """Message-IDs in a header value (angle brackets removed), in order, at most MAX_REFERENCES."""
    if not value:
        return []
    found = _MSGID.findall(value)
    if not found and value.strip() and " " not in value.strip():
        found = [value.strip().strip("<>")]  # some clients omit the brackets
    out: list[str] = []
    for item in found:
        item = item.strip()
        if item and item not in out:
            out.append(item)
    return out[-MAX_REFERENCES:]


# ---------------------------------------------------------------------------------------------
# Decoding


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Text from bytes: the declared charset when it is real and fits, else UTF-8, else a guess."""
    if not data:
        return ""
    for charset in (declared, "utf-8"):
        if not charset:
            continue
        charset = charset.strip().strip('"').lower()
        if charset in ("us-ascii", "ascii"):
            charset = "utf-8"  # a lying "ascii" label is common; UTF-8 is a superset
        try:
            return _clean_text(data.decode(charset))
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200_000]).best()
        if best is not None and best.encoding:
            return _clean_text(data.decode(best.encoding, errors="replace"))
    except Exception:  # noqa: BLE001 - a guesser failing must not fail the message
        pass
    return _clean_text(data.decode("latin-1"))


def _clean_text(text: str) -> str:
    text = text.replace("\x00", "")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _fix_surrogates(value: str) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes; decode them properly."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"))


def _raw_header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    if value is None:
        return None
    return str(value)


def header_text(msg: Message, name: str) -> str:
    """A header as text (RFC 2047 decoded); never raises, whatever the header holds."""
    try:
        value = msg.get(name)
        text = "" if value is None else str(value)
    except Exception:  # noqa: BLE001 - malformed headers are common; fall back to the raw value
        raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), "")
        text = str(raw)
    return _fix_surrogates(text).replace("\x00", "").replace("\r", "").replace("\n", " ").strip()


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    """(display name, lower-cased address) of a header's addresses; unparseable ones are dropped."""
    out: list[tuple[str, str]] = []
    for value in msg.get_all(name) or []:
        try:
            addresses = value.addresses  # strict parsing by the header registry
        except Exception:  # noqa: BLE001
            addresses = ()
        for item in addresses:
            if not isinstance(item, Address) or not item.username or not item.domain:
                continue
            email = f"{item.username}@{item.domain}".lower()
            email = _fix_surrogates(email)
            if "@" in email and " " not in email and len(email) <= 254:
                out.append((_fix_surrogates(item.display_name or ""), email))
    return out


# ---------------------------------------------------------------------------------------------
# HTML


class _TextFromHtml(HTMLParser):
    BLOCKS = {"p", "div", "tr", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script", "head", "title"):
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append("\t")
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("style", "script", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextFromHtml()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # noqa: BLE001
        return re.sub(r"<[^>]*>", " ", markup)
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def sanitise_html(markup: str, max_bytes: int, seconds: float) -> tuple[str, str, list[str]]:
    """(safe HTML, its text, notes): the markup capped to ``max_bytes`` first, then nh3 under a time
    cap; when the sanitiser overruns, the HTML is dropped and only crudely stripped text is kept."""
    notes = []
    if len(markup.encode("utf-8", "ignore")) > max_bytes:
        markup = markup.encode("utf-8", "ignore")[:max_bytes].decode("utf-8", "ignore")
        cut = markup.rfind("<")
        if cut > len(markup) - 2000:
            markup = markup[:cut]
        notes.append(f"HTML body cut to {max_bytes} bytes before sanitising")
    future = _SANITIZER.submit(nh3.clean, markup)
    try:
        safe = future.result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        notes.append("HTML sanitiser took too long; HTML dropped, text kept")
        crude = re.sub(r"<(style|script)\b.*?</\1\s*>", " ", markup, flags=re.I | re.S)
        return "", html.unescape(re.sub(r"<[^>]{0,2000}>", " ", crude))[:TEXT_MAX_CHARS], notes
    return safe, html_to_text(safe)[:TEXT_MAX_CHARS], notes


# ---------------------------------------------------------------------------------------------
# Bodies and parts

_UU_BEGIN = re.compile(r"^begin [0-7]{3,4} (\S.*)$", re.M)


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - bad base64/quoted-printable
        data = None
    if data is None:
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    return data


def part_text(part: Message) -> str:
    return decode_bytes(_payload_bytes(part), part.get_content_charset())


def extract_uuencoded(text: str) -> tuple[str, list[Attachment]]:
    """Pull ``begin 644 name ... end`` blocks out of a text body."""
    found: list[Attachment] = []
    while True:
        match = _UU_BEGIN.search(text)
        if not match:
            return text, found
        end = text.find("\nend", match.end())
        if end == -1:
            return text, found
        lines = text[match.end() : end].strip("\n").split("\n")
        data = bytearray()
        try:
            for line in lines:
                if line.strip() in ("", "`"):
                    continue
                data += binascii.a2b_uu(line)
        except (binascii.Error, ValueError):
            return text, found
        found.append(Attachment(match.group(1).strip(), "application/octet-stream", bytes(data)))
        stop = end + len("\nend")
        text = text[: match.start()] + text[stop:]


def _filename(part: Message, index: int, content_type: str) -> str:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if not name and content_type.startswith("image/"):
        name = f"image-{index}.{content_type.split('/', 1)[1].split(';')[0][:10]}"
    name = _fix_surrogates(name or f"attachment-{index}")
    return safe_filename(name)


_UNSAFE = re.compile(r'[\x00-\x1f\x7f"<>|:*?\\/]')


def safe_filename(name: str) -> str:
    """A name that can't escape a directory, hide its type or break a header."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    name = name.replace("\u202e", "").replace("\u202d", "")  # right-to-left overrides hide extensions
    if not name:
        name = "attachment"
    if len(name) > 150:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:140] + "." + ext[:9]) if dot and len(ext) <= 9 else name[:150]
    return name


def _walk(part: Message):
    """Leaves of the MIME tree, without descending into attached messages."""
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        for sub in part.get_payload():
            if isinstance(sub, Message):
                yield from _walk(sub)
    else:
        yield part


def _dsn(msg: Message) -> Dsn | None:
    if msg.get_content_type() != "multipart/report":
        return None
    if (msg.get_param("report-type") or "").lower() != "delivery-status":
        return None
    dsn = Dsn()
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            blocks = part.get_payload()
            for block in blocks if isinstance(blocks, list) else []:
                for key in ("Final-Recipient", "Original-Recipient"):
                    value = str(block.get(key) or "")
                    if value:
                        address = value.split(";", 1)[-1].strip().strip("<>").lower()
                        if "@" in address and address not in dsn.recipients:
                            dsn.recipients.append(address)
                dsn.action = dsn.action or str(block.get("Action") or "").strip().lower()
                dsn.status = dsn.status or str(block.get("Status") or "").strip()
        elif ctype in ("message/rfc822", "text/rfc822-headers") and dsn.original_message_id is None:
            if ctype == "message/rfc822":
                inner = part.get_payload()
                inner = inner[0] if isinstance(inner, list) and inner else inner
                value = inner.get("Message-ID") if isinstance(inner, Message) else None
            else:
                value = BytesHeaderParser(policy=policy.compat32).parsebytes(_payload_bytes(part)).get("Message-ID")
            ids = parse_ids(str(value or ""))
            dsn.original_message_id = ids[0] if ids else None
    return dsn


def parse_message(
    raw: bytes, *, html_max_bytes: int = DEFAULT_HTML_MAX_BYTES, html_seconds: float = DEFAULT_HTML_SECONDS
):
    """Parse raw bytes into a ParsedMail. Raises only for input that is not a message at all."""
    msg: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)
    mail = ParsedMail()
    for name in (
        "Auto-Submitted",
        "Precedence",
        "X-Loop",
        "X-Auto-Response-Suppress",
        "Return-Path",
        "List-Id",
        "X-Autoreply",
        "X-Autorespond",
        "X-Cairn-Ticket",
        "X-Failed-Recipients",
    ):
        if name in msg:
            mail.headers[name.lower()] = header_text(msg, name)
    ids = parse_ids(header_text(msg, "Message-ID"))
    mail.message_id = ids[0][:MAX_MESSAGE_ID] if ids else None
    mail.in_reply_to = parse_ids(header_text(msg, "In-Reply-To"))
    mail.references = parse_ids(header_text(msg, "References"))
    mail.subject = header_text(msg, "Subject")[:1000]
    senders = _addresses(msg, "From")
    mail.from_count = len(senders)
    if senders:
        mail.from_name, mail.from_address = senders[0]
    mail.reply_to = [a for _, a in _addresses(msg, "Reply-To")]
    mail.to = [a for _, a in _addresses(msg, "To")]
    mail.cc = [a for _, a in _addresses(msg, "Cc")]
    mail.delivered_to = [a for _, a in _addresses(msg, "Delivered-To")] + [
        a for _, a in _addresses(msg, "X-Original-To")
    ]
    mail.dsn = _dsn(msg)

    text_part = html_part = None
    if msg.get_content_maintype() != "multipart":
        ctype = msg.get_content_type()
        if ctype == "text/html":
            html_part = msg
        elif ctype.startswith("text/") or not msg.get("Content-Type"):
            text_part = msg
    else:
        try:
            text_part = msg.get_body(preferencelist=("plain",))
            html_part = msg.get_body(preferencelist=("html",))
        except Exception:  # noqa: BLE001
            text_part = html_part = None
    text = part_text(text_part) if text_part is not None else ""
    if html_part is not None:
        safe, html_text, notes = sanitise_html(part_text(html_part), html_max_bytes, html_seconds)
        mail.html = safe
        mail.notes += notes
        if not text.strip():
            text = html_text
    text, uu = extract_uuencoded(text)
    mail.attachments += uu
    mail.text = text[:TEXT_MAX_CHARS].strip()

    if msg.get_content_maintype() == "multipart":
        index = 0
        for part in _walk(msg):
            if part is text_part or part is html_part:
                continue
            ctype = part.get_content_type()
            if mail.dsn is not None and ctype in ("message/delivery-status", "text/rfc822-headers"):
                continue
            index += 1
            if ctype == "message/rfc822":
                inner = part.get_payload()
                inner = inner[0] if isinstance(inner, list) and inner else inner
                data = inner.as_bytes(policy=policy.SMTP) if isinstance(inner, Message) else _payload_bytes(part)
                subject = header_text(inner, "Subject") if isinstance(inner, Message) else ""
                mail.forwarded.append(subject)
                name = safe_filename((subject or "forwarded message")[:100]) + ".eml"
                mail.attachments.append(Attachment(name, "message/rfc822", data))
                continue
            data = _payload_bytes(part)
            if ctype == "text/plain" and part.get_content_disposition() != "attachment" and not part.get_filename():
                # A second text part (Apple Mail splits text around inline images): keep it in the body.
                extra, uu = extract_uuencoded(part_text(part))
                mail.attachments += uu
                if extra.strip():
                    mail.text = (mail.text + "\n\n" + extra.strip())[:TEXT_MAX_CHARS]
                continue
            if not data:
                continue
            content_id = (header_text(part, "Content-ID").strip("<> ") or None) if "Content-ID" in part else None
            inline = part.get_content_disposition() == "inline" or (
                content_id is not None and ctype.startswith("image/")
            )
            mail.attachments.append(Attachment(_filename(part, index, ctype), ctype, data, inline, content_id))
    if msg.defects:
        mail.notes.append("defects: " + ", ".join(sorted({type(d).__name__ for d in msg.defects}))[:200])
    return mail


# ---------------------------------------------------------------------------------------------
# Quoted replies

_SEPARATORS = [
    re.compile(p, re.I | re.M)
    for p in (
        r"^\s*##- .{0,80} -##\s*$",  # our own notifications' marker
        r"^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original)\s*-{2,}\s*$",
        r"^\s*_{20,}\s*$",  # Outlook (web, mobile) draws a line before the quoted header block
        r"^On\b.{0,300}?\bwrote:\s*$",  # Gmail, Apple Mail, Thunderbird (may wrap over two lines)
        r"^Am\b.{0,300}?\bschrieb\b.{0,200}:\s*$",
        r"^Le\b.{0,300}?\ba écrit\s*:\s*$",
        r"^El\b.{0,300}?\bescribió:\s*$",
        r"^(From|Von|De|Från|Fra): .{1,300}\n(\S.*\n){0,2}(Sent|Gesendet|Envoyé|Skickat|Sendt|Date|Datum): ",
        r"^\s*(Sent from my (iPhone|iPad|Android|mobile device|Galaxy).*|Von meinem iPhone gesendet|"
        r"Get Outlook for (iOS|Android)|Sent from Mail for Windows|Sent from Outlook)\s*$",
    )
]


def strip_quoted(text: str) -> str:
    """The new text of a reply: cut at the first reply separator, and trailing ``>`` quotes removed."""
    cut = len(text)
    for pattern in _SEPARATORS:
        # Gmail wraps "On ... wrote:" over two lines; join single breaks inside it for matching.
        match = pattern.search(text)
        if match and match.start() < cut:
            cut = match.start()
    joined = re.search(r"^On\b[^\n]{0,200}\n[^\n]{0,200}\bwrote:\s*$", text, re.M)
    if joined and joined.start() < cut:
        cut = joined.start()
    new = text[:cut]
    lines = new.rstrip().split("\n")
    while lines and (lines[-1].startswith(">") or not lines[-1].strip()):
        lines.pop()
    new = "\n".join(lines).strip()
    return new or text.strip()
