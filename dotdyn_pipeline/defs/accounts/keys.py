"""How an email account's name becomes its partition key: lower-case ASCII words joined by '-'."""

from __future__ import annotations

import re
import unicodedata

#: The longest key made from a name; longer names keep their first words.
MAX_NAME_KEY = 40
#: The key's stem for an account without a name (or with none made of letters or digits).
NAMELESS = "account"
#: Letters that Unicode does not decompose into an ASCII letter and a mark, spelled as ASCII.
_SPELLED = str.maketrans({"æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})
_APOSTROPHES = re.compile(r"['’ʼ]")
_WORD = re.compile(r"[a-z0-9]+")


def slug(name: str) -> str:
    """The name as a key: "Contoso UK" -> "contoso-uk", "Müller & Söhne" -> "muller-sohne", "O'Neil" ->
    "oneil"; empty when the name holds no letter or digit."""
    text = unicodedata.normalize("NFKD", _APOSTROPHES.sub("", name).casefold().translate(_SPELLED))
    words = _WORD.findall(text.encode("ascii", "ignore").decode())
    key = ""
    for word in words:
        joined = f"{key}-{word}" if key else word
        if len(joined) > MAX_NAME_KEY:
            return key or word[:MAX_NAME_KEY]
        key = joined
    return key


def key_candidates(account_id: str, name: str) -> list[str]:
    """The keys an account may take, best first: its name's; then that name (or `account`, for a nameless
    account) with the first eight characters of its id; then with its whole id, which no other account has."""
    named = slug(name)
    stem, digits = named or NAMELESS, account_id.replace("-", "").lower()
    return ([named] if named else []) + [f"{stem}-{digits[:8]}", f"{stem}-{digits}"]
