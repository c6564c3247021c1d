"""What a person's name may hold: one rule, applied by the validator and stated by the document.

Real names hold letters of every script, combining marks, apostrophes,
hyphens, spaces, and the zero-width (non-)joiners that spell Persian and
Indic words ("Mehr\u200cdad"). Refused is only what does harm in a name:
control characters and line separators (they break logs, CSV and terminals),
bidirectional embeddings, overrides and isolates (they make a name display
as another), surrogates (half a UTF-16 pair is no character) and
non-characters (reserved for a program's internal use).

The rule is written as explicit code point ranges, not Unicode categories,
so it does not shift with the Unicode version of the Python that runs it,
and :data:`PATTERN`, which the OpenAPI document states, is what
:func:`clean` applies, with the lengths counted on the characters as sent.
"""

import re
import unicodedata

from pydantic_core import PydanticCustomError

MAX_LENGTH = 100

REFUSED: tuple[tuple[int, int, str], ...] = (
    (0x0000, 0x001F, "a control character"),
    (0x007F, 0x009F, "a control character"),
    (0x2028, 0x2029, "a line or paragraph separator"),
    (0x202A, 0x202E, "a bidirectional embedding or override"),
    (0x2066, 0x2069, "a bidirectional isolate"),
    (0xD800, 0xDFFF, "a surrogate, half of a UTF-16 pair"),
    (0xFDD0, 0xFDEF, "a non-character"),
    *((plane + 0xFFFE, plane + 0xFFFF, "a non-character") for plane in range(0, 0x110000, 0x10000)),
)
"""Refused code points: (first, last, what each is), in ascending order."""

SPACES = " \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
"""The space separators (Unicode Zs) a name may hold inside, and which are trimmed around it."""


def _ranges_of(points: str) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for code in sorted(map(ord, points)):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


def _escape(code: int) -> str:
    # \uXXXX reads alike in ECMA-262, Python's re and Rust's regex; none agree on an escape
    # above the BMP, but all read the character itself.
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


def _class_body(ranges: list[tuple[int, int]]) -> str:
    return "".join(
        _escape(first) if first == last else f"{_escape(first)}-{_escape(last)}"
        for first, last in ranges
    )


# A pattern reads Unicode text, which holds no lone surrogate: they are refused apart.
_REFUSED_TEXT = _class_body([(first, last) for first, last, _ in REFUSED if first != 0xD800])
_SPACES = _class_body(_ranges_of(SPACES))

# Negated classes keep schemathesis's generation fast, and the group keeps it from
# rewriting the pattern (docs/api.md#the-document-is-tested).
PATTERN = f"^([{_SPACES}]*[^{_REFUSED_TEXT}{_SPACES}][^{_REFUSED_TEXT}]*)$"
"""Allowed characters only, and at least one that is not a space."""

_NAME = re.compile(PATTERN)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean(value: object) -> object:
    """Check a name as sent against :data:`PATTERN` and the lengths, then NFC-normalise and trim.

    Refused rather than repaired: silently altering a legal name is worse
    than asking again. NFC makes one name typed on two keyboards the same
    string, stored and compared (idempotency keys too) alike. Anything but a
    string is left to pydantic's own type check.
    """
    if not isinstance(value, str):
        return value
    if not 1 <= len(value) <= MAX_LENGTH:
        raise PydanticCustomError(
            "name_length", "should have 1 to {max} characters", {"max": MAX_LENGTH}
        )
    if _NAME.fullmatch(value) is None or _SURROGATE.search(value):
        raise PydanticCustomError("name_characters", _what_is_wrong(value))
    return unicodedata.normalize("NFC", value).strip(SPACES)


def _what_is_wrong(value: str) -> str:
    for char in value:
        code = ord(char)
        for first, last, what in REFUSED:
            if first <= code <= last:
                return f"must not contain U+{code:04X}, {what}"
    return "must hold more than spaces"
