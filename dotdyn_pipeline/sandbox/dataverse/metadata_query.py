"""Query options on metadata (EntityDefinitions, Attributes, Keys, relationships), evaluated on the definitions
as Python objects: `$select`, `$filter` and `$expand` with nested `$select;$filter`.

Metadata queries are small and answered in one response (no paging). The filter grammar is what the Web API
documents for them: `eq` and `ne`, `and`, `or`, `not`, parentheses, string, Boolean, number, null and GUID
literals, enum literals such as `Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'`, and paths into complex
values such as `CanChangeTrackingBeEnabled/Value`. Other query options answer the documented 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dotdyn_pipeline.sandbox.dataverse.errors import bad_request
from dotdyn_pipeline.sandbox.dataverse.odata import Token, literal, split_top_level, tokenize

Item = dict[str, Any]
Filter = Callable[[Item], bool]


def no_property(name: str, type_name: str):
    return bad_request(f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{type_name}'.")


def check_options(query: dict[str, str], allowed: tuple[str, ...]) -> None:
    """The documented 400 for a query option the metadata resource does not take."""
    for name in query:
        if name.startswith("$") and name not in allowed:
            raise bad_request(f"The query parameter '{name}' is not supported on metadata.")


def select(items: list[Item], text: str | None, properties: set[str], type_name: str,
           always: tuple[str, ...] = ("MetadataId",)) -> list[Item]:
    """Keep the `$select`ed properties (and the key, and any `@odata.type`), checking each against the type's."""
    if not text:
        return items
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in properties:
            raise no_property(name, type_name)
    keep = [*always, *names]
    return [{k: v for k, v in item.items() if k in keep or k.startswith("@odata.")} for item in items]


def parse_filter(text: str, properties: set[str], type_name: str) -> Filter:
    """`$filter` -> a predicate on one definition."""
    return _Parser(tokenize(text), text, properties, type_name).parse()


def split_options(text: str) -> dict[str, str]:
    """`$select=a,b;$filter=x eq 'y'` (the options inside an `$expand` item) -> {option: value}."""
    options: dict[str, str] = {}
    for part in split_top_level(text, ";"):
        name, sep, value = part.partition("=")
        if not sep:
            raise bad_request(f"The expand option '{part}' is not valid.")
        options[name.strip()] = value
    return options


def _value(item: Item, path: str) -> Any:
    value: Any = item
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class _Parser:
    def __init__(self, tokens: list[Token], text: str, properties: set[str], type_name: str) -> None:
        self.tokens, self.text, self.index = tokens, text, 0
        self.properties, self.type_name = properties, type_name

    def parse(self) -> Filter:
        condition = self._or()
        if self.index < len(self.tokens):
            raise bad_request(f"Syntax error at position {self.tokens[self.index].position} in '{self.text}'.")
        return condition

    def _peek(self, text: str) -> bool:
        return self.index < len(self.tokens) and self.tokens[self.index].text == text

    def _next(self) -> Token:
        if self.index >= len(self.tokens):
            raise bad_request(f"Syntax error at the end of '{self.text}'.")
        self.index += 1
        return self.tokens[self.index - 1]

    def _or(self) -> Filter:
        parts = [self._and()]
        while self._peek("or"):
            self._next()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda item: any(p(item) for p in parts))

    def _and(self) -> Filter:
        parts = [self._not()]
        while self._peek("and"):
            self._next()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else (lambda item: all(p(item) for p in parts))

    def _not(self) -> Filter:
        if self._peek("not"):
            self._next()
            inner = self._not()
            return lambda item: not inner(item)
        return self._primary()

    def _primary(self) -> Filter:
        token = self._next()
        if token.text == "(":
            inner = self._or()
            if not self._peek(")"):
                raise bad_request(f"Syntax error in '{self.text}': expected ')'.")
            self._next()
            return inner
        if token.kind != "name" or token.text in ("true", "false", "null"):
            raise bad_request(f"Syntax error at position {token.position} in '{self.text}': a condition must start "
                              "with a property.")
        path = token.text
        if path.split("/")[0] not in self.properties:
            raise no_property(path.split("/")[0], self.type_name)
        operator = self._next()
        if operator.text not in ("eq", "ne"):
            raise bad_request(f"The operator '{operator.text}' is not supported in metadata queries; use eq or ne.")
        value = self._literal()
        if operator.text == "eq":
            return lambda item: _same(_value(item, path), value)
        return lambda item: not _same(_value(item, path), value)

    def _literal(self) -> Any:
        token = self._next()
        following = self.tokens[self.index] if self.index < len(self.tokens) else None
        if (token.kind == "name" and token.text.startswith("Microsoft.Dynamics.CRM.") and following is not None
                and following.kind == "string"):
            self.index += 1  # an enum literal: Namespace.EnumType'Member'
            return following.text
        return literal(token).value


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.lower() == expected.lower()
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    return actual == expected
