"""The OCS Inventory XML protocol, as the FusionInventory and OCS agents speak it over HTTP.

An agent POSTs a zlib-compressed (``application/x-compress``; gzip or plain XML are accepted too)
``<REQUEST><DEVICEID>..</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>``; the server answers, compressed
the same way, ``<REPLY><RESPONSE>SEND</RESPONSE><PROLOG_FREQ>24</PROLOG_FREQ></REPLY>`` and the agent
then POSTs ``<REQUEST><CONTENT>...</CONTENT><DEVICEID/><QUERY>INVENTORY</QUERY></REQUEST>``, which is
acknowledged by ``<REPLY><RESPONSE>no_account_update</RESPONSE></REPLY>``. Both agents decode a reply
by sniffing it (a zlib header, a gzip header, else plain XML), so replies are zlib like the requests.

Input is hostile until parsed: the compressed body and the decompressed text are capped (the
decompression runs incrementally with a bound, so a zip bomb stops at the cap), and the XML goes
through defusedxml with DTDs, entities and external references all refused.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from cairn.config import setting

PROLOG_FREQ_HOURS = 24


class ProtocolError(Exception):
    """Input the agent sent that we will not read; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def max_compressed() -> int:
    return setting("CAIRN_AGENT_MAX_COMPRESSED_BYTES", 8 * 1024 * 1024)


def max_xml() -> int:
    return setting("CAIRN_AGENT_MAX_XML_BYTES", 64 * 1024 * 1024)


def decompress(body: bytes) -> bytes:
    """The XML inside ``body`` (zlib, gzip or plain), at most ``max_xml()`` bytes."""
    if len(body) > max_compressed():
        raise ProtocolError(f"The request is larger than {max_compressed()} bytes.", 413)
    if not body:
        raise ProtocolError("The request is empty.")
    stripped = body.lstrip()
    if stripped[:1] == b"<":
        if len(stripped) > max_xml():
            raise ProtocolError(f"The inventory is larger than {max_xml()} bytes.", 413)
        return stripped
    limit = max_xml()
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: zlib or gzip, told by the header
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(f"The request is neither XML nor zlib/gzip-compressed XML ({exc}).") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise ProtocolError(f"The inventory is larger than {limit} bytes once decompressed.", 413)
    if not inflater.eof:
        raise ProtocolError("The compressed request is truncated.")
    return out


def parse(xml: bytes) -> Element:
    try:
        root = fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ProtocolError(f"The XML is refused: {type(exc).__name__} (DTDs and entities are not accepted).") from None
    except (ParseError, ValueError, UnicodeError) as exc:  # and what expat says of broken encodings
        raise ProtocolError(f"The XML is malformed: {exc}.") from None
    if root.tag != "REQUEST":
        raise ProtocolError(f"Expected a <REQUEST> document, got <{root.tag[:40]}>.")
    return root


@dataclass
class Request:
    query: str
    device_id: str
    root: Element


def read_request(body: bytes) -> Request:
    root = parse(decompress(body))
    query = (root.findtext("QUERY") or "").strip().upper()
    device_id = (root.findtext("DEVICEID") or "").strip()
    if not query:
        raise ProtocolError("The request has no <QUERY>.")
    if query in ("PROLOG", "INVENTORY") and not device_id:
        raise ProtocolError("The request has no <DEVICEID>.")
    if len(device_id) > 200:
        raise ProtocolError("The <DEVICEID> is longer than 200 characters.")
    return Request(query, device_id, root)


def reply(**fields: str | int) -> bytes:
    """``<REPLY>`` with the fields in order, zlib-compressed as the agents expect."""
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return zlib.compress(f'<?xml version="1.0" encoding="UTF-8" ?>\n<REPLY>{inner}</REPLY>\n'.encode())


def prolog_reply() -> bytes:
    return reply(RESPONSE="SEND", PROLOG_FREQ=PROLOG_FREQ_HOURS)


def inventory_reply() -> bytes:
    return reply(RESPONSE="no_account_update")
