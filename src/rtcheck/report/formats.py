"""Texts from the inputs made safe for where they are printed: a terminal, a spreadsheet, JSON.

A structure or plan name is data from a DICOM file: it may hold terminal escape sequences,
bidirectional overrides or a spreadsheet formula. Every table rtcheck prints shows control
characters as escapes (:func:`terminal_safe`), every CSV cell is neutralised against formulas
(:func:`csv_safe`, :func:`csv_row`), and every JSON it prints escapes C1 controls too
(:func:`json_text`). HTML is escaped by the template engine (:mod:`rtcheck.report.html`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

#: Characters a terminal may act on, or that hide or reorder text: C0 and C1 controls, DEL,
#: zero-width and bidirectional formatting characters, and the lone surrogates that stand
#: for undecodable bytes (a byte 0x9b is the C1 control CSI).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff"
                      "\ud800-\udfff]")



def terminal_safe(text: str) -> str:
    """``text`` with every control character shown as a visible escape (``\\x1b``,
    ``\\n``, ``\\u202e``): C0 and C1 controls, DEL, and the invisible format characters that
    reorder or hide text (bidirectional overrides, zero-width spaces). What a terminal shows
    is then exactly the characters of the name: no escape sequence, no forged line."""
    def visible(m: re.Match) -> str:
        c = m.group(0)
        named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c)
        if named:
            return named
        if 0xDC80 <= ord(c) <= 0xDCFF:  # an undecodable byte (surrogateescape)
            return f"\\x{ord(c) - 0xDC00:02x}"
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    return _CONTROL.sub(visible, text)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def csv_safe(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula (OWASP "CSV injection").

    A text beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
    single quote in front (``'=HYPERLINK(...)``); numbers, and texts that are plain numbers
    (``-1.5``), are kept. Control characters other than tab and line breaks are shown as
    escapes (:func:`terminal_safe`): a CSV printed on a terminal is safe too. Use on every
    cell of every CSV rtcheck writes."""
    if not isinstance(value, str):
        return value
    value = _CONTROL.sub(lambda m: m.group(0) if m.group(0) in "\t\r\n"
                         else terminal_safe(m.group(0)), value)
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(cells: Iterable[Any]) -> list[Any]:
    """:func:`csv_safe` of each cell (None as an empty cell)."""
    return ["" if c is None else csv_safe(c) for c in cells]



def json_text(doc: Any, ensure_ascii: bool = False) -> str:
    """JSON of an output (indent 2, UTF-8 unless ``ensure_ascii``) with C1 control characters
    and bidirectional overrides escaped too (JSON escapes only C0): no terminal escape
    sequence in any JSON rtcheck prints."""
    text = json.dumps(doc, indent=2, ensure_ascii=ensure_ascii)
    return re.sub("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]",
                  lambda m: f"\\u{ord(m.group(0)):04x}", text) + "\n"

