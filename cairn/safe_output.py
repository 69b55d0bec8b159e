"""Text the service writes into files other programs open: CSV cells a spreadsheet must not run as
formulas, XML text a parser must accept, Graphviz DOT strings. Every writer of those formats goes
through these helpers, so each rule is in one place.

CSV (OWASP "CSV injection"): a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is run as a formula by Excel, LibreOffice and Google Sheets; such a cell is written with a
single quote in front, which spreadsheets read as "this is text". Two choices:

* A cell that is a plain number (``-12.50``, ``+3``, ``-1e5``) is left alone: a spreadsheet reads it
  as that number and runs nothing, and prefixing it would turn a money column into text.
* The quote is undone on import (``csv_value``): a cell is quoted exactly when its value needs it or
  already starts with a quote followed by what would be quoted, so ``csv_value(csv_cell(v)) == v``
  for every ``v`` and an exported file imports back unchanged.

XML 1.0 has no way to write most C0 control characters, lone surrogates, U+FFFE or U+FFFF, not even
as character references: they are replaced by U+FFFD (the replacement character), which shows that
something was there without making the document unreadable. Carriage returns are written as
``&#13;`` so a parser gives them back instead of normalising them to line feeds.
"""

from __future__ import annotations

import csv
import re
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _needs_quote(text: str) -> bool:
    while text.startswith("'"):
        text = text[1:]
    return text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text)


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell no spreadsheet runs as a formula (non-text values unchanged)."""
    if isinstance(value, str) and value and _needs_quote(value):
        return "'" + value
    return value


def csv_value(cell: str) -> str:
    """The value a cell written by ``csv_cell`` holds (the importer's inverse)."""
    if cell.startswith("'") and _needs_quote(cell[1:]):
        return cell[1:]
    return cell


class SafeCSVWriter:
    """``csv.writer`` whose rows go through ``csv_cell``: the only way the service writes CSV."""

    def __init__(self, handle, **kwargs) -> None:
        kwargs.setdefault("lineterminator", "\r\n")
        self._writer = csv.writer(handle, **kwargs)

    def writerow(self, row) -> Any:
        return self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(handle, **kwargs) -> SafeCSVWriter:
    return SafeCSVWriter(handle, **kwargs)


# ---------------------------------------------------------------------------------------------
# XML 1.0

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#9;"}
)
REPLACEMENT = "\ufffd"


def xml_chars(value: Any) -> str:
    """``value`` as text holding only characters XML 1.0 allows (the others become U+FFFD)."""
    return _NOT_XML.sub(REPLACEMENT, str(value))


def xml_text(value: Any) -> str:
    """``value`` escaped for an XML element's content."""
    return xml_chars(value).translate(_TEXT_ESCAPES)


def xml_attr(value: Any) -> str:
    """``value`` escaped for a double-quoted XML attribute (whitespace kept as written)."""
    return xml_chars(value).translate(_ATTR_ESCAPES)


# ---------------------------------------------------------------------------------------------
# Graphviz DOT


def dot_string(value: Any) -> str:
    """``value`` as a double-quoted DOT string: quotes and backslashes escaped, every line break
    (``\\r\\n``, ``\\r``, ``\\n``) written as DOT's ``\\n``, characters XML forbids replaced (Graphviz
    writes SVG through XML)."""
    text = xml_chars(value).replace("\r\n", "\n").replace("\r", "\n")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
