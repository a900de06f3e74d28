"""The Web API's routes below `/api/data/<version>/`: one `handle(ApiRequest) -> ApiResponse` for HTTP and `$batch`."""

from __future__ import annotations

import json
from typing import Any

from dotdyn_pipeline.sandbox.dataverse import metadata
from dotdyn_pipeline.sandbox.dataverse.associations import Associations
from dotdyn_pipeline.sandbox.dataverse.bulk_delete import BulkDelete
from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.customization import Customizer
from dotdyn_pipeline.sandbox.dataverse.definitions_api import DefinitionsApi
from dotdyn_pipeline.sandbox.dataverse.errors import DataverseError, bad_request, segment_not_found
from dotdyn_pipeline.sandbox.dataverse.expand import parse_expand, with_expansions
from dotdyn_pipeline.sandbox.dataverse.fetchxml import FetchXmlReader
from dotdyn_pipeline.sandbox.dataverse.lists import RELATIONSHIPS, Memberships
from dotdyn_pipeline.sandbox.dataverse.messages import JSON_TYPE, ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.metadata import METADATA_SETS
from dotdyn_pipeline.sandbox.dataverse.odata import parse_key, parse_select, split_segment
from dotdyn_pipeline.sandbox.dataverse.query import CollectionReader
from dotdyn_pipeline.sandbox.dataverse.schema import Table
from dotdyn_pipeline.sandbox.dataverse.security import ASSOCIATION_PRIVILEGES, Security
from dotdyn_pipeline.sandbox.dataverse.security import READ_ONLY_SETS as SECURITY_SETS
from dotdyn_pipeline.sandbox.dataverse.solution_components import SolutionComponents
from dotdyn_pipeline.sandbox.dataverse.store import ROWID, Store, row_json_sql
from dotdyn_pipeline.sandbox.dataverse.writes import Writer

ACTION = "Microsoft.Dynamics.CRM."
READ_ONLY_SETS = {"sdkmessagefilters", "solutioncomponents", *SECURITY_SETS}


class Api:
    """Dispatches one Web API request; errors come back as the documented error JSON."""

    def __init__(self, store: Store, catalog: Catalog, reader: CollectionReader, api_url: str,
                 organization_id: str, security: Security, bulk_messages: bool = True,
                 remove_member_list: bool = True) -> None:
        self.store, self.catalog, self.reader, self.api_url = store, catalog, reader, api_url
        self.bulk_messages = bulk_messages  # the version has CreateMultiple, UpdateMultiple, UpsertMultiple
        self.remove_member_list = remove_member_list  # the version has the list action RemoveMemberList
        self.writer = Writer(store, catalog, api_url)
        self.fetch_xml = FetchXmlReader(store, catalog, api_url)
        self.definitions = DefinitionsApi(catalog, api_url, Customizer(store, catalog, api_url, security,
                                                                       security.user_id, bulk_messages))
        self.lists = Memberships(store, catalog)
        self.associations = Associations(store, catalog, self.writer, reader, security, security.user_id,
                                         ASSOCIATION_PRIVILEGES)
        self.bulk_delete = BulkDelete(store, catalog, self._delete_row)
        self.security = security
        self.solution_components = SolutionComponents(store, catalog, api_url, security, security.user_id)
        self.who_am_i = {"BusinessUnitId": security.business_unit_id, "UserId": security.user_id,
                         "OrganizationId": organization_id}

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one request, acting as the calling user (or the user it impersonates: `MSCRMCallerID`)."""
        try:
            with self.store.acting_as(*self.security.caller(request.headers)):
                return self._route(request)
        except DataverseError as error:
            return ApiResponse.error(error)

    # -- routing -----------------------------------------------------------------------------------------
    def _route(self, request: ApiRequest) -> ApiResponse:
        path, method = request.path.strip("/"), request.method
        answer = self.security.handle(request) or self.solution_components.handle(request)
        if answer is not None:
            return answer
        if path == "" and method == "GET":
            return ApiResponse.json(metadata.service_document(self.catalog, self.api_url))
        if path == "$metadata" and method == "GET":
            return ApiResponse(200, metadata.csdl(self.catalog).encode(), {"Content-Type": "application/xml"})
        if path == "WhoAmI" and method == "GET":
            return ApiResponse.json({"@odata.context": f"{self.api_url}/$metadata#Microsoft.Dynamics.CRM."
                                                       "WhoAmIResponse", **self.who_am_i})
        if path == "AddListMembersList" and method == "POST":
            return self._add_list_members_list(request)
        if path == "BulkDelete" and method == "POST":
            job_id = self.bulk_delete.run(request.json())
            return ApiResponse.json({"@odata.context": f"{self.api_url}/$metadata#Microsoft.Dynamics.CRM."
                                                       "BulkDeleteResponse", "JobId": job_id})
        name, key, rest = split_segment(path)
        if name in METADATA_SETS:
            return self.definitions.handle(request)
        table = self.catalog.require_set(name)
        if (table.entity_set in READ_ONLY_SETS or self.catalog.is_intersect(table.logical_name)) and method != "GET":
            raise DataverseError(405, "0x80060888", f"The entity set '{table.entity_set}' is read-only.")
        if key is None:
            return self._collection(table, rest, request)
        return self._entity(table, parse_key(table, key), rest, request)

    def _collection(self, table: Table, rest: str, request: ApiRequest) -> ApiResponse:
        method = request.method
        if rest == "" and method == "GET" and "fetchXml" in request.query:
            return self.fetch_xml.read(table, request)
        if rest == "" and method == "GET":
            return self.reader.read(table, request)
        if rest == "$count" and method == "GET":
            return self.reader.count(table, request)
        if rest == "" and method == "POST":
            with self.store.transaction():
                row = self.writer.create(table, request.json())
                self._after_write(table, row)
            return self._written(table, row, request, created=True)
        if rest.startswith(ACTION) and method == "POST":
            return self._bulk(table, rest.removeprefix(ACTION), request)
        if rest == "" and method in ("PATCH", "DELETE", "PUT"):
            raise DataverseError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on a collection.")
        raise segment_not_found(rest)

    def _entity(self, table: Table, key: dict[str, Any], rest: str, request: ApiRequest) -> ApiResponse:
        method = request.method
        if rest.startswith(ACTION) and table.logical_name == "list" and method == "POST":
            return self._member_action(self.writer.require(table, key), rest.removeprefix(ACTION), request)
        if table.logical_name == "list" and rest.split("(", 1)[0].split("/", 1)[0] in RELATIONSHIPS:
            return self._member_reference(self.writer.require(table, key), rest, request)
        side = self.catalog.side(table.logical_name, split_segment(rest)[0]) if rest else None
        if side is not None:
            return self.associations.handle(side, table, self.writer.require(table, key), rest, request)
        if rest:
            raise segment_not_found(rest)
        if method == "GET":
            row = self.writer.require(table, key)
            return self._single(table, row, request)
        if method == "PATCH":
            with self.store.transaction():
                row, created = self.writer.upsert(table, key, request.json(), request.headers.get("if-match"),
                                                  request.headers.get("if-none-match"))
                self._after_write(table, row)
            return self._written(table, row, request, created=created)
        if method == "DELETE":
            with self.store.transaction():
                self._delete_row(table, self.writer.require(table, key))
            return ApiResponse(204)
        raise DataverseError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on a record.")

    # -- responses ---------------------------------------------------------------------------------------
    def _single(self, table: Table, row: dict[str, Any], request: ApiRequest) -> ApiResponse:
        select = parse_select(table, request.query.get("$select"))
        expansions = parse_expand(table, request.query.get("$expand"), self.catalog)
        etag = request.headers.get("if-none-match", "")
        if table.system and etag.strip() == f'W/"{row["_version"]}"':
            return ApiResponse(304)
        context = f"{self.api_url}/$metadata#{table.entity_set}"
        if select:
            context += "(" + ",".join(c.web_name for c in select) + ")"
        body = self.store.render(table, row[ROWID], with_expansions(
            row_json_sql(table, tuple(select) if select else None, False), expansions))
        return ApiResponse(200, ('{"@odata.context":' + json.dumps(context + "/$entity") + "," + body[1:]).encode(),
                           {"Content-Type": JSON_TYPE, "OData-Version": "4.0"})

    def _written(self, table: Table, row: dict[str, Any], request: ApiRequest, created: bool) -> ApiResponse:
        url = self.writer.entity_url(table, row)
        if request.prefer.get("return") == "representation":
            response = self._single(table, self.writer.require(table, {table.primary_key: row[table.primary_key]}),
                                    ApiRequest("GET", "", request.query, {}))
            response.status = 201 if created else 200
            response.headers["Preference-Applied"] = "return=representation"
            return response
        return ApiResponse(204, headers={"OData-EntityId": url, "Location": url})

    def _delete_row(self, table: Table, row: dict[str, Any]) -> None:
        self.store.delete(table, row)
        self.associations.forget(table, row)
        self._after_write(table, row)

    def _after_write(self, table: Table, row: dict[str, Any]) -> None:
        if table.logical_name == "listmember" and row.get("listid"):
            list_row = self.store.find(self.catalog.table("list"), {"listid": row["listid"]})
            if list_row is not None:
                self.lists.refresh_count(list_row)

    # -- bulk operations ---------------------------------------------------------------------------------
    def _bulk(self, table: Table, message: str, request: ApiRequest) -> ApiResponse:
        if message not in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple") or not self.bulk_messages:
            raise segment_not_found(ACTION + message)
        if not table.bulk_operations:
            raise bad_request(f"The '{message}' message is not supported for the entity '{table.logical_name}'. "
                              "Check sdkmessagefilters before using it.")
        body = request.json()
        targets = body.get("Targets") if isinstance(body, dict) else None
        if not isinstance(targets, list) or not targets:
            raise bad_request(f"The '{message}' request needs a non-empty 'Targets' collection.")
        ids = []
        with self.store.transaction():  # standard tables: any error rolls back the whole request
            for target in targets:
                if not isinstance(target, dict) or "@odata.type" not in target:
                    raise bad_request("Every target must be an object with an '@odata.type' annotation.")
                payload = {k: v for k, v in target.items() if k != "@odata.id"}
                if message == "CreateMultiple":
                    row = self.writer.create(table, payload)
                else:
                    key = self._target_key(table, target, payload)
                    if not key:
                        raise bad_request(f"Every target of {message} must carry its primary key, an '@odata.id' "
                                          "or the values of an alternate key.")
                    row, _ = self.writer.upsert(table, key, payload,
                                                if_match="*" if message == "UpdateMultiple" else None)
                ids.append(row[table.primary_key])
        if message == "CreateMultiple":
            return ApiResponse.json({"@odata.context": f"{self.api_url}/$metadata#Microsoft.Dynamics.CRM."
                                                       "CreateMultipleResponse", "Ids": ids})
        return ApiResponse(204)

    def _target_key(self, table: Table, target: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        """How a bulk target names its row: `@odata.id`, its primary key, or a whole alternate key."""
        if "@odata.id" in target:
            name, key, rest = split_segment(str(target["@odata.id"]).split(self.writer.api_path)[-1].lstrip("/"))
            if self.catalog.by_set(name) is not table or key is None or rest:
                raise bad_request(f"The '@odata.id' '{target['@odata.id']}' does not name a {table.logical_name}.")
            return parse_key(table, key)
        values = self.writer.values(table, payload)
        for key in table.key_sets():
            if all(values.get(column) is not None for column in key):
                return {column: values[column] for column in key}
        return {}

    # -- marketing lists ---------------------------------------------------------------------------------
    def _member_action(self, list_row: dict[str, Any], action: str, request: ApiRequest) -> ApiResponse:
        if action == "RemoveMemberList" and not self.remove_member_list:
            raise segment_not_found(ACTION + action)
        body = request.json()
        entity_id = body.get("EntityId") if isinstance(body, dict) else None
        if not isinstance(entity_id, str):
            raise bad_request(f"The '{action}' action needs an 'EntityId'.")
        entity_id = entity_id.lower()
        with self.store.transaction():
            if action == "AddMemberList":
                kind = self.lists.member_type(list_row)
                member = self.lists.add(list_row, kind, [entity_id])[0]
                return ApiResponse.json({"@odata.context": f"{self.api_url}/$metadata#Microsoft.Dynamics.CRM."
                                                           "AddMemberListResponse", "Id": member})
            if action == "RemoveMemberList":
                self.lists.remove(list_row, entity_id)
                return ApiResponse(204)
        raise segment_not_found(ACTION + action)

    def _member_reference(self, list_row: dict[str, Any], rest: str, request: ApiRequest) -> ApiResponse:
        """The list's many-to-many relationship to its members, on every version: `POST
        lists(<id>)/listcontact_association/$ref` with `{"@odata.id": <contact URL>}` associates a member;
        `DELETE lists(<id>)/listcontact_association(<contact id>)/$ref`, or `.../$ref?$id=<contact URL>`,
        disassociates one (likewise `listlead_association`, `listaccount_association`)."""
        navigation, member_key, ref = split_segment(rest)
        kind, method = RELATIONSHIPS[navigation], request.method
        if ref != "$ref":
            raise segment_not_found(rest)
        if method == "POST" and member_key is None:
            body = request.json()
            member = self.writer.referenced(kind, body.get("@odata.id") if isinstance(body, dict) else None)
            with self.store.transaction():
                self.lists.add(list_row, kind, [member])
            return ApiResponse(204)
        if method == "DELETE":
            if member_key is None:
                member = self.writer.referenced(kind, request.query.get("$id"))
            else:
                table = self.catalog.table(kind)
                member = self.writer.require(table, parse_key(table, member_key))[table.primary_key]
            with self.store.transaction():
                self.lists.disassociate(list_row, kind, member)
            return ApiResponse(204)
        raise DataverseError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on '{rest}'.")

    def _add_list_members_list(self, request: ApiRequest) -> ApiResponse:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("List"), dict) or not isinstance(
                body.get("Members"), list):
            raise bad_request("AddListMembersList needs 'List' (a list entity) and 'Members' (a collection).")
        list_ref = body["List"]
        list_row = self.writer.require(self.catalog.table("list"), {"listid": str(list_ref.get("listid", "")).lower()})
        by_kind: dict[str, list[str]] = {}
        for member in body["Members"]:
            kind = str(member.get("@odata.type", "")).removeprefix("#").removeprefix(ACTION)
            table = self.catalog.get(kind)
            if table is None or not isinstance(member.get(table.primary_key), str):
                raise bad_request("Every member needs '@odata.type' (account, contact or lead) and its id.")
            by_kind.setdefault(kind, []).append(member[table.primary_key].lower())
        with self.store.transaction():
            for kind, ids in by_kind.items():
                self.lists.add(list_row, kind, ids)
        return ApiResponse(204)
