"""Raw RFC 5322 bytes to a ParsedMail, robust to what real mail is.

The standard library parses (``policy.default``); everything that can be wrong in real mail is
handled here so that no single message can make processing crash: undecodable, lying or missing
charsets (UTF-8, then Windows-1252; never a guess), NUL bytes and other control characters, raw
8-bit headers, a missing Content-Transfer-Encoding, uuencoded bodies, HTML-only mail (size-capped,
then sanitised by nh3 under a time cap, then turned into text), inline ``cid:`` images, RFC 2231
file names, forwarded ``message/rfc822`` and DSNs.
"""

from __future__ import annotations

import binascii
import codecs
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


def content_fingerprint(raw: bytes) -> str:
    """What makes two deliveries the same message whatever path they took (relays add Received and
    other trace headers): the sender, subject and date headers as sent, and the body bytes."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(header_block(raw)[: 256 * 1024])
    parts = [" ".join((_raw_header(headers, name) or "").split()).lower() for name in ("From", "Subject", "Date")]
    end = next((i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := raw.find(sep)) != -1), len(raw))
    body = raw[end:].replace(b"\r\n", b"\n").rstrip()
    return _sha("\x00".join(parts).encode("utf-8", "surrogateescape") + b"\x00" + body)


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


# Labels real mail uses that Python does not know (compared without case or punctuation). Registered
# as a codec search function, so the standard library's RFC 2047 and RFC 2231 decoding knows them too.
_CHARSET_ALIASES = {
    "iso88598i": "iso8859-8",  # Hebrew, logical order: the same bytes as ISO-8859-8
    "iso88598e": "iso8859-8",  # Hebrew, explicit order
    "csiso88598i": "iso8859-8",
    "csiso88598e": "iso8859-8",
    "logical": "iso8859-8",
    "gb231280": "gb18030",
    "xgbk": "gb18030",
    "xsjis": "cp932",
    "windows874": "cp874",
    "xmaccyrillic": "mac-cyrillic",
    "unicode11utf8": "utf-8",
    "unicode20utf8": "utf-8",
    "xunicode20utf8": "utf-8",
}


def _alias_search(name: str) -> codecs.CodecInfo | None:
    target = _CHARSET_ALIASES.get(re.sub(r"[^a-z0-9]", "", name.lower()))
    return codecs.lookup(target) if target else None


codecs.register(_alias_search)

# Python codecs that decode bytes to str but are no charset a mail can be written in.
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "charmap"}
# A declared charset whose bytes don't fit is retried as the superset clients really wrote: a
# "gb2312" text with GBK-only characters is GB18030, "ks_c_5601-1987" is Windows-949, and so on.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "euc_kr": "cp949", "shift_jis": "cp932", "big5": "big5hkscs"}
# Windows-1252, with the five bytes it leaves undefined read as ISO-8859-1: decoding never fails.
_WINDOWS_1252 = "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in range(256))


def _codec(declared: str | None) -> str | None:
    """Python's name for a declared charset, or None when it names none (``text/html``, ``x-unknown``)."""
    label = (declared or "").strip().strip("\"'").strip()
    if not label or len(label) > 50:
        return None
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


def _windows_1252(data: bytes) -> str:
    return codecs.charmap_decode(data, "strict", _WINDOWS_1252)[0]


_MULTIBYTE = re.compile(r"[^\x00-\x7f\ufffd]")


def _undeclared(data: bytes) -> str:
    """Text without a (usable) declared charset: UTF-8, else Windows-1252 (what "ISO-8859-1" and
    8-bit text without a label really are). Never a guess from a few bytes. UTF-8 with a few broken
    bytes (a cut, a pasted Windows-1252 character) stays UTF-8, the broken bytes as U+FFFD."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    broken = text.count("\ufffd")
    if len(_MULTIBYTE.findall(text)) > broken:
        return text
    return _windows_1252(data)


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Text from bytes: the declared charset when it is real (a lying ``us-ascii`` and an impossible
    name count as none), else UTF-8, else Windows-1252. Bytes that don't fit a declared charset are
    tried as its superset, then as UTF-8 (a wrong label), then become U+FFFD."""
    if not data:
        return ""
    codec = _codec(declared)
    if codec is None or codec == "ascii":
        return _clean_text(_undeclared(data))
    if codec in ("iso8859-1", "cp1252"):
        return _clean_text(_windows_1252(data))
    for candidate in (codec, _SUPERSETS.get(codec), None if codec.startswith("utf") else "utf-8"):
        if candidate:
            try:
                return _clean_text(data.decode(candidate))
            except (UnicodeError, ValueError, LookupError):
                continue
    try:
        return _clean_text(data.decode(_SUPERSETS.get(codec, codec), errors="replace"))
    except (UnicodeError, ValueError, LookupError):  # a codec that can't even replace (utf-7 oddities)
        return _clean_text(_undeclared(data))


# C0 controls but tab and newline (carriage returns are newlines by then), and DEL.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _clean_text(text: str) -> str:
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


_ESCAPED = re.compile(r"[\udc80-\udcff]+")


def _fix_surrogates(value: str) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes; decode them as text without a charset
    (UTF-8, else Windows-1252), all runs of one value the same way."""
    runs = _ESCAPED.findall(value)
    if not runs:
        return value
    try:
        decoded = [run.encode("utf-8", "surrogateescape").decode("utf-8") for run in runs]
    except UnicodeDecodeError:
        decoded = [_windows_1252(run.encode("utf-8", "surrogateescape")) for run in runs]
    parts = iter(decoded)
    return _ESCAPED.sub(lambda _: next(parts), value)


def _raw_header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    if value is None:
        return None
    return str(value)


def _raw_value(msg: Message, name: str) -> str | None:
    """A header as received, unfolded: raw 8-bit bytes still surrogate escapes (``policy.default``
    turns them into U+FFFD when it parses the header)."""
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if raw is None:
        return None
    return re.sub(r"\r?\n(?=[ \t])", "", str(raw))


def _one_line(text: str) -> str:
    text = text.replace("\r", "").replace("\n", " ").replace("\t", " ")
    return _CONTROLS.sub("", text).strip()


def header_text(msg: Message, name: str) -> str:
    """A header as text (RFC 2047 decoded, raw 8-bit bytes decoded); never raises, whatever it holds."""
    raw = _raw_value(msg, name)
    if raw is not None and _ESCAPED.search(raw):
        fixed = _fix_surrogates(raw)
        try:
            return _one_line(str(policy.default.header_factory(name, fixed)))
        except Exception:  # noqa: BLE001 - malformed headers are common; keep the decoded raw value
            return _one_line(fixed)
    try:
        value = msg.get(name)
        text = "" if value is None else str(value)
    except Exception:  # noqa: BLE001 - malformed headers are common; fall back to the raw value
        text = raw or ""
    return _one_line(_fix_surrogates(text))


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


# Plain text in angle brackets that an HTML parser would take for a tag and drop: "<https://x.org>",
# "<mailto:a@x.org>", "<tech@example.org>" (broken generators write them unescaped). No tag name has
# "://" or "@" in it, so these are escaped to stay text.
_ANGLED = re.compile(
    r"<((?:[a-z][a-z0-9+.\-]{0,30}://|mailto:|tel:|sip:|urn:)[^\s<>\"']+|[^\s<>\"'/=@!?][^\s<>\"'/=@]*@[^\s<>\"'/=@]+)>",
    re.I,
)


def _keep_angled_text(markup: str) -> str:
    return _ANGLED.sub(r"&lt;\1&gt;", markup)


def html_to_text(markup: str) -> str:
    markup = _keep_angled_text(markup)
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
    markup = _keep_angled_text(markup)
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
    raw = [(k, _raw_value(part, k)) for k in ("Content-Disposition", "Content-Type")]
    if any(v and _ESCAPED.search(v) for _, v in raw):
        # Raw 8-bit bytes in the name (already U+FFFD in the parsed header): decode the raw headers.
        legacy = Message()
        for key, value in raw:
            if value is not None:
                legacy[key] = _fix_surrogates(value)
        try:
            name = legacy.get_filename() or name
        except Exception:  # noqa: BLE001
            pass
    if not name and content_type.startswith("image/"):
        name = f"image-{index}.{content_type.split('/', 1)[1].split(';')[0][:10]}"
    name = _fix_surrogates(name or f"attachment-{index}")
    return safe_filename(name)


_UNSAFE = re.compile(r'[\x00-\x1f\x7f"<>|:*?\\/]')
# Unicode spaces (no-break, en/em/thin/hair, narrow no-break, ideographic...) and line separators.
_SPACES = re.compile(r"[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def safe_filename(name: str) -> str:
    """A name that can't escape a directory, hide its type or break a header."""
    name = _SPACES.sub(" ", name)  # a space, not nothing (later steps drop what isn't printable)
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

_COLON = r"[ \xa0\u202f]?:"  # French puts a (no-break) space before the colon
# Lines below which everything is quoted (on a line of their own, not ">"-quoted).
_CUT_LINES = [
    re.compile(p, re.I)
    for p in (
        r"\s*##- .{0,80} -##\s*",  # our own notifications' marker (notify.REPLY_MARKER)
        r"\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original|"
        r"Mensagem original|Messaggio originale|Oorspronkelijk bericht)\s*-{2,}\s*",
        r"\s*_{20,}\s*",  # Outlook (web, mobile) draws a line before the quoted header block
        r"\s*(Sent from my (iPhone|iPad|Android|mobile device|Galaxy).*|Von meinem iPhone gesendet|"
        r"Envoyé de mon (iPhone|iPad)|Enviado desde mi (iPhone|iPad)|Enviado do meu (iPhone|iPad)|"
        r"Get Outlook for (iOS|Android)|Sent from Mail for Windows|Sent from Outlook)\s*",
    )
]
# Outlook's header block of the quoted message: "From: ..." and, within the next lines, "Sent: ...".
_BLOCK_FROM = re.compile(r"\s*\*?(From|Von|De|Da|Van|Från|Fra|Od)\*?" + _COLON + r"\*?\s*\S", re.I)
_BLOCK_SENT = re.compile(
    r"\s*\*?(Sent|Date|Gesendet|Datum|Envoyé|Enviado|Enviada|Fecha|Data|Inviato|Verzonden|Skickat|Sendt|"
    r"Wysłano)(\s+(el|em|le|am|on))?\*?" + _COLON,
    re.I,
)
# "On <date>, <name> wrote:" as the clients of each language write it (one line, or two joined).
_ATTRIBUTIONS = [
    re.compile(p, re.I)
    for p in (
        r"On\s.{1,300}\swrote" + _COLON,
        r"Le\s.{1,300}\sa\s+écrit" + _COLON,
        r"Am\s.{1,300}\sschrieb\b.{0,200}:",
        r"El\s.{1,300}\sescribió" + _COLON,
        r"Em\s.{1,300}\sescreveu" + _COLON,
        r"Il\s.{1,300}\sha\s+scritto" + _COLON,
        r"Op\s.{1,300}\sschreef\b.{0,200}:",
    )
]


def _is_quote(line: str) -> bool:
    return line.lstrip(" \t").startswith(">")


def _attribution(lines: list[str], i: int) -> int:
    """How many lines (1 or 2; 0 for none) the reply header starting at line ``i`` spans."""
    first = lines[i].strip()
    if not first or len(first) > 500:
        return 0
    candidates = [(first, 1)]
    second = lines[i + 1].strip() if i + 1 < len(lines) else ""
    if second and len(second) <= 500 and not _is_quote(second):
        candidates.append((first + " " + second, 2))  # wrapped by the client
    for candidate, span in candidates:
        if re.search(r"\d", candidate) and any(p.fullmatch(candidate) for p in _ATTRIBUTIONS):
            return span
    return 0


def _next_text(lines: list[str], i: int) -> int | None:
    return next((j for j in range(i, len(lines)) if lines[j].strip()), None)


def strip_quoted(text: str) -> str:
    """The new text of a reply. Everything below a reply separator (our marker, Outlook's header
    block, "Original Message", a mobile signature, a reply header not followed by ``>`` quotes) is
    quoted. ``>``-quoted lines below a reply header are dropped but the text between and after them
    is kept (bottom-posted and interleaved replies); without a reply header, a leading and a trailing
    ``>`` block are dropped, ``>`` lines amid the sender's own text kept."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    keep: list[str] = []
    quoting = False  # below a reply header whose message is quoted with ">"
    i = 0
    while i < len(lines):
        line = lines[i]
        if _is_quote(line):
            keep.append(line)
            i += 1
            continue
        if any(p.fullmatch(line) for p in _CUT_LINES):
            break
        if _BLOCK_FROM.match(line) and any(_BLOCK_SENT.match(ln) for ln in lines[i + 1 : i + 4]):
            break
        span = _attribution(lines, i)
        if span:
            after = _next_text(lines, i + span)
            if after is None or not _is_quote(lines[after]):
                break  # the quoted message follows unmarked: all of it is quote
            quoting = True
            i += span
            continue
        keep.append(line)
        i += 1
    own = [j for j, line in enumerate(keep) if line.strip() and not _is_quote(line)]
    first, last = (own[0], own[-1]) if own else (len(keep), -1)
    new = [line for j, line in enumerate(keep) if not (_is_quote(line) and (quoting or j < first or j > last))]
    result = re.sub(r"\n{3,}", "\n\n", "\n".join(new)).strip()
    return result or text.strip()
