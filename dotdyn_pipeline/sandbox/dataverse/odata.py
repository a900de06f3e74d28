"""OData v4 as Dataverse speaks it: literals, `$filter` (compiled to SQL), `$select`, `$orderby` and keys.

The filter grammar is the subset the Web API documents for row queries: `eq ne gt ge lt le`, `and or not`,
parentheses, `contains/startswith/endswith`, `Microsoft.Dynamics.CRM.In/NotIn`, parameter aliases (`@p`),
and typed literals (`'text'` with `''` escaping, numbers, `true/false/null`, bare GUIDs, dates and
date-times). Comparisons are type-checked as the service does, so a quoted GUID or a quoted date is an error.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

from dotdyn_pipeline.sandbox.dataverse.errors import bad_request, no_property
from dotdyn_pipeline.sandbox.dataverse.schema import PATHS, Column, Table

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_DATETIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})"
_TOKEN = re.compile(rf"""
    (?P<space>\s+)
  | (?P<guid>{_GUID})(?![\w-])
  | (?P<datetime>{_DATETIME})
  | (?P<date>\d{{4}}-\d{{2}}-\d{{2}})(?![\w:])
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w])
  | (?P<name>[A-Za-z_][\w.]*(?:/[A-Za-z_]\w*)*)
  | (?P<alias>@\w+)
  | (?P<jstring>"(?:[^"\\]|\\.)*")
  | (?P<punct>[(),=\[\]])
""", re.VERBOSE)

NUMERIC = {"Integer", "BigInt", "Picklist", "State", "Status"}
DECIMAL = {"Double", "Decimal", "Money"}
COMPARISONS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_OPERATOR_KINDS = {"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual",
                   "lt": "LessThan", "le": "LessThanOrEqual"}
_LITERAL_EDM = {"string": "Edm.String", "int": "Edm.Int32", "decimal": "Edm.Decimal", "bool": "Edm.Boolean",
                "guid": "Edm.Guid", "datetime": "Edm.DateTimeOffset", "date": "Edm.Date"}


@dataclass(frozen=True)
class Token:
    kind: str  # string, jstring, guid, datetime, date, number, name, alias, punct
    text: str
    position: int


@dataclass(frozen=True)
class Literal:
    kind: str  # string, int, decimal, bool, null, guid, datetime, date
    value: Any


def tokenize(text: str) -> list[Token]:
    """Split an OData expression into tokens; a quote that never closes is the documented error."""
    tokens, position = [], 0
    while position < len(text):
        if text[position] == "'":
            end, parts = position + 1, []
            while True:
                close = text.find("'", end)
                if close < 0:
                    raise bad_request(f"There is an unterminated literal at position {position + 1} in '{text}'.")
                parts.append(text[end:close])
                if text.startswith("''", close):
                    parts.append("'")
                    end = close + 2
                    continue
                break
            tokens.append(Token("string", "".join(parts), position))
            position = close + 1
            continue
        match = _TOKEN.match(text, position)
        if match is None:
            raise bad_request(f"Syntax error: character '{text[position]}' is not valid at position {position} "
                              f"in '{text}'.")
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup, match.group(), position))
        position = match.end()
    return tokens


def literal(token: Token) -> Literal:
    """The typed value of a literal token."""
    if token.kind in ("string", "jstring"):
        return Literal("string", token.text if token.kind == "string" else _json_string(token.text))
    if token.kind == "guid":
        return Literal("guid", token.text.lower())
    if token.kind == "datetime":
        return Literal("datetime", normalize_datetime(token.text))
    if token.kind == "date":
        return Literal("date", token.text)
    if token.kind == "number":
        is_decimal = any(ch in token.text for ch in ".eE")
        return Literal("decimal" if is_decimal else "int", float(token.text) if is_decimal else int(token.text))
    if token.kind == "name" and token.text in ("true", "false"):
        return Literal("bool", token.text == "true")
    if token.kind == "name" and token.text == "null":
        return Literal("null", None)
    raise bad_request(f"Syntax error at position {token.position}: expected a literal, found '{token.text}'.")


def _json_string(text: str) -> str:
    import json

    return json.loads(text)


def normalize_datetime(text: str) -> str:
    """An ISO date-time as stored and served: UTC, second precision, `Z` suffix."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_request(f"The DateTimeOffset text '{text}' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?"
                          "(zzzzzz)?' and each field value is within valid range.") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def coerce(column: Column, value: Literal, operator: str = "Equal") -> Any:
    """The SQL value of `value` compared with `column`, or the service's incompatible-types error."""
    if value.kind == "null":
        return None
    kind, ok = column.type, False
    if kind in ("String", "Memo"):
        ok = value.kind == "string"
    elif kind in NUMERIC:
        ok = value.kind == "int"
    elif kind in DECIMAL:
        ok = value.kind in ("int", "decimal")
    elif kind == "Boolean":
        ok = value.kind == "bool"
    elif kind == "DateTime":
        ok = value.kind == "datetime"
    elif kind == "DateOnly":
        ok = value.kind == "date"
    elif kind in ("Uniqueidentifier", "Lookup", "Customer"):
        ok = value.kind == "guid"
    if not ok:
        raise bad_request("A binary operator with incompatible types was detected. Found operand types "
                          f"'{column.edm_type}' and '{_LITERAL_EDM.get(value.kind, 'Edm.Untyped')}' for operator "
                          f"kind '{operator}'.")
    return int(value.value) if kind == "Boolean" else value.value


def coerce_text(column: Column, text: str) -> Any:
    """A value given as a string (In/NotIn PropertyValues) converted to the column's type."""
    try:
        if column.type in NUMERIC or column.type == "Boolean":
            return int(text) if column.type != "Boolean" else int(text.lower() == "true")
        if column.type in DECIMAL:
            return float(text)
        if column.type in ("Uniqueidentifier", "Lookup", "Customer"):
            return str(uuid.UUID(text))
        if column.type == "DateTime":
            return normalize_datetime(text)
    except ValueError as exc:
        raise bad_request(f"Cannot convert the literal '{text}' to the expected type '{column.edm_type}'.") from exc
    return text


class _FilterParser:
    """Recursive descent over the tokens, producing a parameterised SQL condition."""

    def __init__(self, table: Table, text: str, aliases: dict[str, str]) -> None:
        self.table, self.text = table, text
        self.tokens = self._expand_aliases(tokenize(text), aliases)
        self.index = 0
        self.params: list[Any] = []

    def _expand_aliases(self, tokens: list[Token], aliases: dict[str, str]) -> list[Token]:
        expanded = []
        for token in tokens:
            if token.kind == "alias":
                if token.text not in aliases:
                    raise bad_request(f"The parameter alias '{token.text}' was not given a value.")
                value = tokenize(aliases[token.text])
                if len(value) != 1:
                    raise bad_request(f"The value of parameter alias '{token.text}' is not a single literal.")
                token = Token(value[0].kind, value[0].text, token.position)
            expanded.append(token)
        return expanded

    def parse(self) -> str:
        sql = self._or()
        if self.index < len(self.tokens):
            token = self.tokens[self.index]
            raise bad_request(f"Syntax error at position {token.position} in '{self.text}'.")
        return sql

    def _peek(self, text: str | None = None) -> Token | None:
        if self.index >= len(self.tokens):
            return None
        token = self.tokens[self.index]
        return token if text is None or token.text == text else None

    def _next(self, expected: str | None = None) -> Token:
        token = self._peek()
        if token is None or (expected is not None and token.text != expected):
            where = token.position if token else len(self.text)
            raise bad_request(f"Syntax error at position {where} in '{self.text}'"
                              + (f": expected '{expected}'." if expected else "."))
        self.index += 1
        return token

    def _or(self) -> str:
        parts = [self._and()]
        while self._peek("or"):
            self._next()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and(self) -> str:
        parts = [self._not()]
        while self._peek("and"):
            self._next()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _not(self) -> str:
        if self._peek("not"):
            self._next()
            return f"(NOT {self._not()})"
        return self._primary()

    def _primary(self) -> str:
        token = self._next()
        if token.text == "(":
            inner = self._or()
            self._next(")")
            return f"({inner})"
        if token.kind != "name":
            raise bad_request(f"Syntax error at position {token.position} in '{self.text}': a condition must "
                              "start with a property or a function.")
        if self._peek("("):
            return self._function(token)
        column = self._column(token.text)
        operator = self._next()
        if operator.text not in COMPARISONS:
            raise bad_request(f"Syntax error at position {operator.position} in '{self.text}': "
                              f"unknown operator '{operator.text}'.")
        value = literal(self._next())
        sql_value = coerce(column, value, _OPERATOR_KINDS[operator.text])
        name = _quote(column.name)
        if sql_value is None:
            if operator.text not in ("eq", "ne"):
                return "0"
            return f"{name} IS {'' if operator.text == 'eq' else 'NOT '}NULL"
        self.params.append(sql_value)
        if operator.text == "ne":  # OData: null is not equal to any value
            return f"({name} <> ? OR {name} IS NULL)"
        return f"{name} {COMPARISONS[operator.text]} ?"

    def _column(self, name: str) -> Column:
        mapped = PATHS.get((self.table.logical_name, name), name)
        column = self.table.by_web_name.get(mapped) or self.table.by_name.get(mapped)
        if column is None or (column.is_lookup and mapped == column.name):
            raise no_property(name, self.table.logical_name)
        return column

    def _function(self, name: Token) -> str:
        self._next("(")
        function = name.text
        if function in ("contains", "startswith", "endswith"):
            column = self._column(self._next().text)
            self._next(",")
            value = literal(self._next())
            self._next(")")
            if column.type not in ("String", "Memo") or value.kind != "string":
                raise bad_request(f"The function '{function}' needs a text property and a text literal.")
            escaped = value.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = {"contains": f"%{escaped}%", "startswith": f"{escaped}%", "endswith": f"%{escaped}"}
            self.params.append(pattern[function])
            return f"{_quote(column.name)} LIKE ? ESCAPE '\\'"
        if function in ("Microsoft.Dynamics.CRM.In", "Microsoft.Dynamics.CRM.NotIn"):
            arguments = self._named_arguments()
            if set(arguments) != {"PropertyName", "PropertyValues"}:
                raise bad_request(f"The function '{function}' takes PropertyName and PropertyValues.")
            column = self._column(arguments["PropertyName"])
            values = [coerce_text(column, text) for text in arguments["PropertyValues"]]
            self.params.extend(values)
            marks = ",".join("?" * len(values)) or "NULL"
            return f"{_quote(column.name)} {'NOT ' if function.endswith('NotIn') else ''}IN ({marks})"
        raise bad_request(f"An unknown function with name '{function}' was found. This may also be a function "
                          "import or a key lookup on a navigation property, which is not allowed.")

    def _named_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        while True:
            key = self._next().text
            self._next("=")
            if self._peek("["):
                self._next()
                items = []
                while not self._peek("]"):
                    token = self._next()
                    if token.kind not in ("string", "jstring"):
                        raise bad_request("PropertyValues must be a list of text values.")
                    items.append(literal(token).value)
                    if self._peek(","):
                        self._next()
                self._next("]")
                arguments[key] = items
            else:
                arguments[key] = literal(self._next()).value
            if self._peek(")"):
                self._next()
                return arguments
            self._next(",")


def compile_filter(table: Table, text: str, aliases: dict[str, str] | None = None) -> tuple[str, list[Any]]:
    """`$filter` text -> (SQL condition, parameters)."""
    parser = _FilterParser(table, text, aliases or {})
    return parser.parse(), parser.params


def parse_select(table: Table, text: str | None) -> list[Column] | None:
    """`$select` -> the columns asked for (None = all); unknown names are the documented error."""
    if not text:
        return None
    columns = []
    for name in (part.strip() for part in text.split(",")):
        column = table.by_web_name.get(name)
        if column is None:
            raise no_property(name, table.logical_name)
        if column not in columns:
            columns.append(column)
    return columns


def parse_orderby(table: Table, text: str | None) -> list[tuple[Column, bool]]:
    """`$orderby` -> [(column, descending)]."""
    if not text:
        return []
    order = []
    for part in (p.strip() for p in text.split(",")):
        name, _, direction = part.partition(" ")
        direction = direction.strip().lower() or "asc"
        if direction not in ("asc", "desc"):
            raise bad_request(f"Syntax error in '$orderby': unknown direction '{direction}'.")
        column = table.by_web_name.get(name)
        if column is None:
            raise no_property(name, table.logical_name)
        order.append((column, direction == "desc"))
    return order


def parse_key(table: Table, text: str) -> dict[str, Any]:
    """A key predicate's inside (`<guid>` or `name='v',other=5`) -> {column logical name: SQL value}.

    Lookups in alternate keys are written `_x_value=<guid>` (or `x=<guid>`). A set of names that is not the
    primary key or a declared alternate key is the documented error.
    """
    tokens = tokenize(text)
    if len(tokens) == 1:
        return {table.primary_key: coerce(table.by_name[table.primary_key], literal(tokens[0]))}
    values: dict[str, Any] = {}
    index = 0
    while index < len(tokens):
        if index + 2 >= len(tokens) or tokens[index + 1].text != "=":
            raise _invalid_key(table)
        name = tokens[index].text
        column = table.by_web_name.get(name) or table.by_name.get(name)
        if column is None:
            raise _invalid_key(table)
        values[column.name] = coerce(column, literal(tokens[index + 2]))
        index += 3
        if index < len(tokens):
            if tokens[index].text != ",":
                raise _invalid_key(table)
            index += 1
    if tuple(sorted(values)) not in {tuple(sorted(key)) for key in table.key_sets()}:
        raise _invalid_key(table)
    return values


def _invalid_key(table: Table):
    name = f"Microsoft.Dynamics.CRM.{table.logical_name}"
    return bad_request(f"The key in the request URI is not valid for resource '{name}'. Ensure that the names and "
                       f"number of key properties match the declared or alternate key properties for the resource "
                       f"'{name}'.")


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """The non-empty parts of `text` between separators outside parentheses and quotes:
    `a($select=x,y),b` -> [`a($select=x,y)`, `b`]."""
    parts, depth, quoted, start = [], 0, False, 0
    for position, char in enumerate(text + separator):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and char == separator:
            if text[start:position].strip():
                parts.append(text[start:position].strip())
            start = position + 1
    return parts


def split_segment(path: str) -> tuple[str, str | None, str]:
    """`name(key)/rest` -> (name, key text or None, rest), aware of quotes inside the key."""
    end = 0
    while end < len(path) and path[end] not in "(/":
        end += 1
    name, key = path[:end], None
    if end < len(path) and path[end] == "(":
        depth, quoted, position = 0, False, end
        while position < len(path):
            char = path[position]
            if char == "'":
                quoted = not quoted
            elif not quoted and char == "(":
                depth += 1
            elif not quoted and char == ")":
                depth -= 1
                if depth == 0:
                    break
            position += 1
        if position >= len(path):
            raise bad_request(f"Bad Request - Error in query syntax: unbalanced parentheses in '{path}'.")
        key, end = path[end + 1:position], position + 1
    rest = path[end + 1:] if end < len(path) and path[end] == "/" else path[end:]
    return name, key, rest


def _quote(name: str) -> str:
    return f'"{name}"'
