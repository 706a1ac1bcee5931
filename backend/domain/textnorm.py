"""Text normalisation for anything that screens free text (the explanation fact-check, the Q&A).

:func:`skeleton` folds text so that what a reader *sees* is what a screen *checks*:

1. Unicode NFKC (fullwidth ``ａｐｐｒｏｖｅｄ``, mathematical ``𝐚𝐩𝐩𝐫𝐨𝐯𝐞𝐝``, ligatures, superscripts, odd
   spaces fold to their plain form);
2. invisible characters removed: every format character (category ``Cf``: zero-width space/joiner/
   non-joiner, word joiner, BOM, soft hyphen, LRM/RLM, tag characters), combining marks (``Mn``/``Me``:
   accents stacked on a letter, variation selectors) and the invisible "letters" (Hangul fillers,
   braille blank);
3. look-alike letters folded to their Latin skeleton with :data:`CONFUSABLES`, a subset of Unicode
   TR39's ``confusables.txt`` restricted to what maps onto ``[a-z]`` (Cyrillic, Greek, Armenian, Latin
   small capitals and IPA letters); any decimal digit of any script becomes an ASCII digit;
4. lower case, typographic quotes and dashes as ASCII.

Why a table of our own and not a library: no maintained TR39 implementation is installed (the PyPI
``confusables`` package is small and unmaintained; ICU's spoof checker needs PyICU, a native build),
and the screens only need the direction "looks like a Latin letter → that letter". ``text-unidecode``
(installed) is *not* used: it transliterates by sound (Cyrillic ``р`` → ``r``), which is the wrong
answer for a look-alike ``р`` in "аррrоvеd". Letters that are not in the table stay as they are, and the
fact-check's allow-list refuses any word it does not know, so an unmapped script fails closed.

:func:`has_bidi_controls` tells whether the text holds bidi embeddings/overrides/isolates: those change
the *display order*, so what is checked would not be what is shown; a screen refuses such text.

:func:`words_to_numbers` rewrites number words as digits ("two million dollars" → "2000000 dollars",
"fifteen percent" → "15 percent", "four point two" → "4.2", "sixties" → "60s"). No maintained
library does this (``word2number`` is unmaintained and raises on mixed text), so a 40-line parser.
"""

from __future__ import annotations

import re
import unicodedata

#: Look-alike → Latin letter (lower and upper case; TR39 confusables onto [a-zA-Z]).
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "ԁ": "d", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "ӏ": "l", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x",
    "ѕ": "s", "ԛ": "q", "ԝ": "w", "ь": "b", "ѵ": "v", "ү": "y", "ɡ": "g", "ԍ": "g", "ӕ": "ae",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ї": "I", "Ј": "J", "Ѕ": "S", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W",
    "Ӏ": "I", "Ү": "Y", "Ѵ": "V", "З": "3", "з": "3", "б": "6", "Ь": "b",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j", "ѡ": "w", "ς": "c", "μ": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C", "Ϳ": "J",
    # Armenian, Cherokee-free Latin look-alikes, small capitals and IPA
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "ռ": "n", "ք": "p", "զ": "q", "ա": "w",
    "ı": "i", "ȷ": "j", "ᴀ": "a", "ꜰ": "f", "ǫ": "q", "ɩ": "i", "ɪ": "i", "ʟ": "l", "ɑ": "a", "ɒ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d",
    "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ᴊ": "j", "ᴋ": "k", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r",
    "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z", "ł": "l", "ƚ": "l", "ɫ": "l",
    "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ƀ": "b", "ɨ": "i", "ʋ": "v", "ɣ": "y", "ß": "ss", "æ": "ae",
    "œ": "oe", "þ": "p", "ð": "d", "ŋ": "n", "ɛ": "e", "ɔ": "c", "ǀ": "l", "ℓ": "l", "∣": "l", "ǃ": "!",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "﹘": "-",
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'", "´": "'", "“": '"', "”": '"', "„": '"',
    "″": '"', "«": '"', "»": '"', "‹": "'", "›": "'", "…": "...", "·": ".", "•": "-", "٫": ".", "٬": ",",
}
#: Invisible characters that are letters or symbols (not category Cf): Hangul fillers, braille blank.
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")
#: Bidi embeddings, overrides and isolates: they reorder what is displayed.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def has_bidi_controls(text: str) -> bool:
    return any(ch in BIDI_CONTROLS for ch in text)


def strip_invisible(text: str) -> str:
    """NFKC, then format characters, combining marks and invisible letters removed."""
    out = []
    for ch in unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text)):
        cat = unicodedata.category(ch)
        if cat in ("Cf", "Mn", "Me") or ch in INVISIBLE_LETTERS:
            continue
        if cat == "Zs" or ch in "\t\r\x0b\x0c":
            ch = " "
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def skeleton(text: str) -> str:
    """What a screen should read: NFKC, invisibles removed, look-alikes folded, lower case, ASCII digits."""
    out = []
    for ch in strip_invisible(text):
        ch = CONFUSABLES.get(ch, ch)
        if len(ch) == 1 and ch.isdigit() and not ch.isascii():
            ch = str(unicodedata.digit(ch, 0))
        out.append(ch)
    text = "".join(out).lower()
    return "".join(CONFUSABLES.get(ch, ch) for ch in text)  # lower-casing can create a look-alike (Σ → σ)


_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_DECADES = {w[:-1] + "ies": f"{v}s" for w, v in _TENS.items()}  # "sixties" → "60s"
_WORD = "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True))
_RUN = re.compile(rf"\b(?:(?:a|an)\s+(?=hundred|thousand|million|billion))?(?:{_WORD})(?:(?:\s+|-|\s+and\s+)"
                  rf"(?:{_WORD}))*(?:\s+point(?:\s+(?:{'|'.join(_UNITS)}))+)?\b")
_DIGIT_SCALE = re.compile(r"(\d+(?:\.\d+)?)\s*(thousand|million|billion)\b")


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6f}".rstrip("0")


def _value(words: list[str]) -> float:
    total, current = 0, 0
    for w in words:
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in _SCALES:
            total += max(current, 1) * _SCALES[w]
            current = 0
    return total + current


def _convert(m: re.Match[str]) -> str:
    text = m.group(0)
    words = [w for w in re.split(r"[\s-]+", text) if w not in ("and", "a", "an")]
    if len(words) == 1 and words[0] in _SCALES and not text.startswith("a"):  # "2.5 million": digits first
        return text
    if words == ["one"]:  # "one of the reasons" stays a word; "one inquiry" is a number (see the caller)
        return text
    if "point" in words:
        i = words.index("point")
        return _fmt(_value(words[:i])) + "." + "".join(str(_UNITS[w]) for w in words[i + 1:])
    return _fmt(_value(words))


def words_to_numbers(text: str) -> str:
    """Number words as digits in a lower-cased text (``1.5 million`` → ``1500000`` too)."""
    text = re.sub(r"\b(" + "|".join(_DECADES) + r")\b", lambda m: _DECADES[m.group(1)], text)
    text = re.sub(r"(?<!\bno )(?<!\bsome)(?<!\bany)\bone\b(?!\s+(?:of|another)\b)", "1", text)
    text = re.sub(r"\ba\s+(?:half|quarter)\b", lambda m: "0.5" if "half" in m.group(0) else "0.25", text)
    text = _DIGIT_SCALE.sub(lambda m: _fmt(float(m.group(1)) * _SCALES[m.group(2)]), text)
    text = _RUN.sub(_convert, text)
    return _DIGIT_SCALE.sub(lambda m: _fmt(float(m.group(1)) * _SCALES[m.group(2)]), text)
