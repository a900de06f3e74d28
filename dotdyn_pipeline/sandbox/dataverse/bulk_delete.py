"""`POST /BulkDelete`: the unbound action that deletes the rows a set of QueryExpressions selects, as a system job.

The body is Microsoft's documented one: `QuerySet` (QueryExpressions with `EntityName` and a `Criteria`
FilterExpression of `Conditions` and nested `Filters`), `JobName`, `SendEmailNotification`, `ToRecipients`,
`CCRecipients`, `RecurrencePattern` and `StartDateTime`. The answer is `{"JobId": <asyncoperationid>}`; the
job is an `asyncoperation` (operationtype 13) with its `bulkdeleteoperation` holding the counts. The
stand-in runs the job at once, so a client that polls the asyncoperation finds it completed (statecode 3,
statuscode 30). Recurring jobs are not served: a non-empty `RecurrencePattern` answers 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.errors import bad_request
from dotdyn_pipeline.sandbox.dataverse.odata import coerce_text
from dotdyn_pipeline.sandbox.dataverse.schema import Column, Table
from dotdyn_pipeline.sandbox.dataverse.store import ROWID, Store, now_text, q

CRM = "Microsoft.Dynamics.CRM."
REQUIRED = ("QuerySet", "JobName", "SendEmailNotification", "ToRecipients", "CCRecipients", "RecurrencePattern",
            "StartDateTime")
BULK_DELETE_JOB, COMPLETED, SUCCEEDED = 13, 3, 30
_COMPARISONS = {"Equal": "=", "NotEqual": "<>", "GreaterThan": ">", "GreaterEqual": ">=", "LessThan": "<",
                "LessEqual": "<="}


def _values(condition: dict[str, Any], column: Column) -> list[Any]:
    values = condition.get("Values") or []
    if not isinstance(values, list):
        raise bad_request("The 'Values' of a ConditionExpression must be a collection.")
    return [coerce_text(column, str(v.get("Value") if isinstance(v, dict) else v)) for v in values]


def _condition(table: Table, condition: Any) -> tuple[str, list[Any]]:
    """One ConditionExpression -> (SQL, parameters)."""
    if not isinstance(condition, dict):
        raise bad_request("Every condition must be a ConditionExpression object.")
    name, operator = condition.get("AttributeName"), condition.get("Operator")
    column = table.by_name.get(name) if isinstance(name, str) else None
    if column is None:
        raise bad_request(f"'{table.logical_name}' entity doesn't contain attribute with Name = '{name}'.")
    field, values = q(column.name), _values(condition, column)
    if operator == "Null" or operator == "NotNull":
        return f"{field} IS {'NOT ' if operator == 'NotNull' else ''}NULL", []
    if operator in ("In", "NotIn"):
        if not values:
            raise bad_request(f"The condition '{operator}' on '{name}' needs at least one value.")
        return f"{field} {'NOT ' if operator == 'NotIn' else ''}IN ({','.join('?' * len(values))})", values
    if operator in _COMPARISONS:
        if len(values) != 1:
            raise bad_request(f"The condition '{operator}' on '{name}' takes exactly one value.")
        return f"{field} {_COMPARISONS[operator]} ?", values
    raise bad_request(f"The condition operator '{operator}' is not supported.")


def _filter(table: Table, criteria: Any) -> tuple[str, list[Any]]:
    """A FilterExpression (conditions and nested filters joined by And/Or) -> (SQL, parameters)."""
    if criteria is None:
        return "1", []
    if not isinstance(criteria, dict):
        raise bad_request("'Criteria' must be a FilterExpression object.")
    joiner = {"and": " AND ", "or": " OR "}.get(str(criteria.get("FilterOperator", "And")).lower())
    if joiner is None:
        raise bad_request(f"The FilterOperator '{criteria.get('FilterOperator')}' is not valid: And or Or.")
    parts, params = [], []
    for sql, values in [*(_condition(table, c) for c in criteria.get("Conditions") or []),
                        *(_filter(table, f) for f in criteria.get("Filters") or [])]:
        parts.append(f"({sql})")
        params += values
    return (joiner.join(parts) if parts else "1"), params


def _query(expression: Any, catalog: Catalog) -> tuple[Table, str, list[Any]]:
    if not isinstance(expression, dict) or expression.get("@odata.type", CRM + "QueryExpression").removeprefix(
            "#") != CRM + "QueryExpression":
        raise bad_request("Every item of 'QuerySet' must be a Microsoft.Dynamics.CRM.QueryExpression.")
    table = catalog.get(str(expression.get("EntityName", "")))
    if table is None or not table.system:
        raise bad_request(f"The entity with a name = '{expression.get('EntityName')}' was not found in the "
                          "MetadataCache.")
    return (table, *_filter(table, expression.get("Criteria")))


class BulkDelete:
    """Runs BulkDelete requests; `delete(table, row)` removes one row as a DELETE request would."""

    def __init__(self, store: Store, catalog: Catalog, delete: Callable[[Table, dict[str, Any]], None]) -> None:
        self.store, self.catalog, self.delete = store, catalog, delete

    def run(self, body: Any) -> str:
        """Deletes what the request's queries select and records the job; its asyncoperationid."""
        if not isinstance(body, dict):
            raise bad_request("The BulkDelete request needs a JSON object body.")
        missing = [name for name in REQUIRED if name not in body]
        if missing:
            raise bad_request(f"The parameter '{missing[0]}' of the BulkDelete action is required.")
        if not isinstance(body["QuerySet"], list) or not body["QuerySet"]:
            raise bad_request("'QuerySet' must be a non-empty collection of QueryExpressions.")
        if body["RecurrencePattern"]:
            raise bad_request("Recurring bulk delete jobs are not supported by this organisation.")
        queries = [_query(expression, self.catalog) for expression in body["QuerySet"]]
        started = now_text()
        deleted = 0
        with self.store.transaction():
            for table, where, params in queries:
                for found in self.store.rows(table, "NULL", where, params, q(ROWID), -1, (q(table.primary_key),)):
                    row = self.store.find(table, {table.primary_key: found[3]})
                    if row is not None:
                        self.delete(table, row)
                        deleted += 1
            job = self.store.insert(self.catalog.table("asyncoperation"), {
                "name": str(body["JobName"]), "operationtype": BULK_DELETE_JOB, "statecode": COMPLETED,
                "statuscode": SUCCEEDED, "startedon": started, "completedon": now_text()})
            self.store.insert(self.catalog.table("bulkdeleteoperation"), {
                "name": str(body["JobName"]), "asyncoperationid": job["asyncoperationid"], "successcount": deleted,
                "failurecount": 0, "statecode": COMPLETED, "statuscode": SUCCEEDED})
        return job["asyncoperationid"]
