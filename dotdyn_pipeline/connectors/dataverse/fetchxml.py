"""FetchXML: a query reduced to the keys of the records it selects, and the paging of its results.

A marketing list's query (`list.query`) selects records with filters, conditions and link-entities, and names
columns and orders for people who look at it. Reading only which records it selects, the query keeps what
chooses them and drops the rest: every `attribute` (of the entity and of its link-entities) and every `order`,
then asks for the entity's primary key alone, ordered by it, with `distinct` so that a link-entity matching a
record twice returns it once. Microsoft: "Page results using FetchXml" (order by a unique column for
consistent pages; a distinct query gets no order added by the service), "Query data using FetchXml".

Parsed with the standard library's ElementTree; a document declaring a DTD or entities is refused before it is
parsed, so no entity is ever expanded.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import unquote
from xml.parsers import expat

#: Rows a page may hold: the service's maximum for standard tables.
MAX_PAGE_ROWS = 5000
#: Attributes of `fetch` that limit or page the result: the reader sets its own.
_PAGING = ("count", "page", "paging-cookie", "top")
#: Elements that only shape the columns or the order of the rows, not which records are selected.
_PRESENTATION = ("attribute", "all-attributes", "order")


class FetchXmlError(ValueError):
    """A query that cannot be read as a selection of records (malformed, or of a shape with no record set)."""


@dataclass(frozen=True)
class KeyQuery:
    """A query rewritten to select the primary key of its entity; `top` set when the query is capped."""

    entity: str
    primary_key: str
    fetch: ET.Element
    top: int | None = None

    def page(self, number: int, cookie: str | None, count: int = MAX_PAGE_ROWS) -> str:
        """The FetchXML text of page `number` (from 1), after the page whose paging cookie is `cookie`."""
        fetch = copy.deepcopy(self.fetch)
        if self.top is not None:
            fetch.set("top", str(self.top))
        else:
            fetch.set("count", str(count))
            fetch.set("page", str(number))
            if cookie:
                fetch.set("paging-cookie", cookie)
        return ET.tostring(fetch, encoding="unicode")


def _refuse_declarations(text: str) -> None:
    """Raise FetchXmlError for text that is not well-formed XML, or that declares a DTD or an entity."""
    def refuse(*_: object) -> None:
        raise FetchXmlError("FetchXML may not declare a DTD or entities")

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(text, True)
    except expat.ExpatError as error:
        raise FetchXmlError(f"FetchXML is not well-formed: {error}") from None


def _element(text: str) -> ET.Element:
    """The root element of `text`, which declares no DTD nor entity (checked first): nothing is expanded."""
    _refuse_declarations(text)
    return ET.fromstring(text)  # noqa: S314 - declarations refused above, the attacks defusedxml stops need them


def parse(text: str) -> ET.Element:
    """The `fetch` element of a FetchXML query."""
    if not text or not text.strip():
        raise FetchXmlError("the query is empty")
    fetch = _element(text)
    if fetch.tag != "fetch":
        raise FetchXmlError(f"the root element is <{fetch.tag}>, not <fetch>")
    return fetch


def query_entity(text: str) -> str:
    """The logical name of the table a FetchXML query selects from."""
    return _entity_element(parse(text)).get("name", "")


def _entity_element(fetch: ET.Element) -> ET.Element:
    entities = fetch.findall("entity")
    if len(entities) != 1 or not entities[0].get("name"):
        raise FetchXmlError("a query has one <entity> with a name")
    return entities[0]


def key_query(text: str, primary_key: str) -> KeyQuery:
    """`text` rewritten to select only `primary_key` of its entity, distinct and ordered by it; its filters,
    conditions and link-entities unchanged."""
    fetch = parse(text)
    if fetch.get("aggregate", "").lower() == "true":
        raise FetchXmlError("an aggregate query selects no records")
    entity = _entity_element(fetch)
    top = fetch.get("top")
    for name in _PAGING:
        fetch.attrib.pop(name, None)
    for parent in [entity, *entity.iter("link-entity")]:
        for child in [child for child in parent if child.tag in _PRESENTATION]:
            parent.remove(child)
    # the key first, for people reading the query in a log
    entity.insert(0, ET.Element("attribute", name=primary_key))
    entity.insert(1, ET.Element("order", attribute=primary_key))
    fetch.set("distinct", "true")
    return KeyQuery(entity.get("name", ""), primary_key, fetch, _top(top))


def _top(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        top = int(value)
    except ValueError:
        raise FetchXmlError(f"top={value!r} is not a number") from None
    if not 1 <= top <= MAX_PAGE_ROWS:
        raise FetchXmlError(f"top={top} is outside 1 to {MAX_PAGE_ROWS}")
    return top


def next_cookie(annotation: str | None) -> str | None:
    """The paging cookie for the next page's `paging-cookie` attribute, from a page's
    `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie` annotation (`<cookie pagenumber="2" pagingcookie="..."/>`,
    whose `pagingcookie` is URL-encoded twice); None when the service gave none (a query that pages without)."""
    if not annotation:
        return None
    encoded = _element(annotation).get("pagingcookie")
    return unquote(unquote(encoded)) if encoded else None
