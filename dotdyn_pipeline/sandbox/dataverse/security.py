"""Security as Dataverse keeps it: business unit, users, roles, privileges, and who may customise.

The organisation has one root business unit, the application user the sandbox's client signs in as (its
`applicationid` is the client id; WhoAmI answers its `systemuserid`), Microsoft's System Administrator,
System Customizer and Basic User roles, and, unless the organisation is bare, the solution's publisher,
solution record and roles as its definition grants them (the application user holds the connector's). Every
table has the eight privileges Dataverse creates with it (`prv{Right}{SchemaName}`); the customisation
privileges are those of the metadata "tables" Entity, Attribute, Relationship and EntityKey, and of SystemForm
(AddSolutionComponent needs prvReadSystemForm).

Served: the entity sets `businessunits`, `systemusers`, `roles`, `privileges` (read only),
`systemuserrolescollection` and `roleprivilegescollection` (read only), the navigations
`systemusers(id)/systemuserroles_association` and `roles(id)/roleprivileges_association` (GET, and
`POST .../$ref` to associate), the bound action `roles(id)/Microsoft.Dynamics.CRM.AddPrivilegesRole` and the
function `RetrieveVersion()`. The stand-in checks privileges where an installation needs them (metadata
writes, creating roles, publishers and solutions, giving roles privileges or users roles); it does not check
them on data.

Option `dataverse.app_user_roles` (default `System Administrator`): comma-separated names of the Microsoft
roles the application user holds, e.g. `Basic User` for a user that may not customise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from dotdyn_pipeline.sandbox.dataverse.errors import DataverseError, bad_request, not_found, segment_not_found
from dotdyn_pipeline.sandbox.dataverse.messages import JSON_TYPE, ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.odata import parse_select, split_segment
from dotdyn_pipeline.sandbox.dataverse.schema import SECURITY_TABLES, Table
from dotdyn_pipeline.sandbox.dataverse.store import ROWID, Store
from dotdyn_pipeline.sandbox.people import record_id
from dotdyn_pipeline.solution import schema as solution

MISSING_PRIVILEGE = "0x80040220"
#: Access right -> the privilege's `accessright` value (Dataverse's AccessRights flags).
ACCESS_RIGHTS = {"Read": 1, "Write": 2, "Append": 4, "AppendTo": 16, "Create": 32, "Delete": 65536,
                 "Share": 262144, "Assign": 524288}
#: Depth names and the `privilegedepthmask` of a role's privilege (PrivilegeDepth numbers 0..3 accepted too).
DEPTHS = {"Basic": 1, "Local": 2, "Deep": 4, "Global": 8}
#: Metadata "tables" whose privileges govern customisation (prvCreateEntity, prvWriteAttribute, ...).
CUSTOMIZATION = ("Entity", "Attribute", "Relationship", "EntityKey", "SystemForm")
SYSTEM_ADMINISTRATOR, SYSTEM_CUSTOMIZER, BASIC_USER = "System Administrator", "System Customizer", "Basic User"
#: What the stand-in's API versions report from RetrieveVersion.
VERSIONS = {"v8.2": "8.2.2.0112", "v9.0": "9.0.2.3034", "v9.1": "9.1.0.14134", "v9.2": "9.2.25014.00171"}

BUSINESS_UNIT, SYSTEM_USER, ROLE, PRIVILEGE, PUBLISHER, SOLUTION, USER_ROLES, ROLE_PRIVILEGES = SECURITY_TABLES
READ_ONLY_SETS = {PRIVILEGE.entity_set, USER_ROLES.entity_set, ROLE_PRIVILEGES.entity_set}
#: Creating a record of these tables needs the table's Create privilege (the rest of the data is unchecked).
GUARDED_CREATES = {ROLE.logical_name, PUBLISHER.logical_name, SOLUTION.logical_name}
NAVIGATIONS = {("systemuser", "systemuserroles_association"): (USER_ROLES, "systemuserid", "roleid", ROLE),
               ("role", "roleprivileges_association"): (ROLE_PRIVILEGES, "roleid", "privilegeid", PRIVILEGE)}


def privilege_id(name: str) -> str:
    return record_id(0, f"privilege:{name.lower()}", 0)


def privilege_rows(tables: Iterable[Table]) -> list[dict[str, Any]]:
    """The privileges of every table and of customisation, as `privilege` rows."""
    names = [t.schema_name for t in tables] + list(CUSTOMIZATION)
    return [{"privilegeid": privilege_id(f"prv{right}{name}"), "name": f"prv{right}{name}",
             "accessright": ACCESS_RIGHTS[right]} for name in names for right in solution.RIGHTS]


def _depth_mask(depth: Any) -> int:
    if isinstance(depth, int) or (isinstance(depth, str) and depth.isdigit()):
        return 1 << int(depth) if 0 <= int(depth) <= 3 else 0
    return DEPTHS.get(str(depth), 0)


class Security:
    """Users, roles and privileges of one organisation, kept in the organisation's store."""

    def __init__(self, store: Store, seed: int, client_id: str, api_url: str, api_version: str,
                 tables: Callable[[], Iterable[Table]]) -> None:
        self.store, self.api_url, self.api_version, self.tables = store, api_url, api_version, tables
        self.business_unit_id = record_id(seed, "businessunit", 0)
        self.user_id = record_id(seed, "systemuser", 0)
        self.client_id = client_id
        self._privileges_for = 0  # how many tables the privilege rows cover

    # -- seeding ---------------------------------------------------------------------------------------
    def seed(self, bare: bool, app_user_roles: list[str]) -> None:
        """The business unit, the application user, Microsoft's roles and (unless bare) the solution's roles."""
        with self.store.transaction():
            self.store.insert(BUSINESS_UNIT, {"businessunitid": self.business_unit_id, "name": "Organisation"})
            self.store.insert(SYSTEM_USER, {
                "systemuserid": self.user_id, "fullname": "# Email Campaign Connector (application)",
                "domainname": f"{self.client_id}@sandbox", "applicationid": self.client_id,
                "businessunitid": self.business_unit_id, "isdisabled": 0, "accessmode": 4})
            self.sync_privileges()
            every = {row["name"]: "Global" for row in privilege_rows(self.tables())}
            customizing = {name: "Global" for name in every if name.endswith(CUSTOMIZATION) or
                           name.endswith(("Publisher", "Solution", "Role"))}
            reading = {name: "Global" for name in every if name.startswith("prvRead")}
            granted = {SYSTEM_ADMINISTRATOR: every, SYSTEM_CUSTOMIZER: {**reading, **customizing},
                       BASIC_USER: reading}
            if not bare:
                granted.update({role.name: role.privileges() for role in solution.ROLES})
                self._install_solution_records()
            roles = {name: self._create_role(name, privileges) for name, privileges in granted.items()}
            held = app_user_roles + ([] if bare else [solution.CONNECTOR_ROLE])
            for name in held:
                if name not in roles:
                    raise ValueError(f"dataverse.app_user_roles: no role named {name!r} (known: {sorted(roles)})")
                self._associate(USER_ROLES, "systemuserid", self.user_id, "roleid", roles[name])

    def _install_solution_records(self) -> None:
        """The solution's publisher and its (unmanaged) solution record, as installing the solution leaves them."""
        publisher, record = solution.PUBLISHER, solution.SOLUTION
        publisher_id = record_id(0, f"publisher:{publisher.unique_name}", 0)
        self.store.insert(PUBLISHER, {
            "publisherid": publisher_id, "uniquename": publisher.unique_name, "friendlyname": publisher.friendly_name,
            "customizationprefix": publisher.prefix, "customizationoptionvalueprefix": publisher.option_value_prefix})
        self.store.insert(SOLUTION, {
            "solutionid": record_id(0, f"solution:{record.unique_name}", 0), "uniquename": record.unique_name,
            "friendlyname": record.friendly_name, "version": record.version, "description": record.description,
            "publisherid": publisher_id, "ismanaged": False})

    def _create_role(self, name: str, privileges: dict[str, str]) -> str:
        role_id = record_id(0, f"role:{name}", 0)
        self.store.insert(ROLE, {"roleid": role_id, "name": name, "businessunitid": self.business_unit_id})
        for privilege, depth in privileges.items():
            self._grant(role_id, privilege_id(privilege), DEPTHS[depth])
        return role_id

    def sync_privileges(self) -> None:
        """Add the privileges of tables created since the last call (Dataverse creates them with the table)."""
        tables = list(self.tables())
        if len(tables) == self._privileges_for:
            return
        for row in privilege_rows(tables):
            if self.store.find(PRIVILEGE, {"privilegeid": row["privilegeid"]}) is None:
                self.store.insert(PRIVILEGE, row)
        self._privileges_for = len(tables)

    # -- the guard -------------------------------------------------------------------------------------
    def require(self, user_id: str, privilege: str) -> None:
        """Raise Dataverse's missing-privilege error unless one of the user's roles has `privilege`."""
        self.sync_privileges()
        held = self.store.db.execute(
            "SELECT COUNT(*) FROM systemuserroles u JOIN roleprivileges p ON p.roleid = u.roleid "
            "JOIN privilege v ON v.privilegeid = p.privilegeid WHERE u.systemuserid = ? AND v.name = ?",
            (user_id, privilege)).fetchone()[0]
        if held:
            return
        roles = self.store.count(USER_ROLES, '"systemuserid" = ?', [user_id])
        raise DataverseError(403, MISSING_PRIVILEGE, f"Principal user (Id={user_id}, type=8, roleCount={roles}, "
                             f"accessMode=4), is missing {privilege} privilege (Id={privilege_id(privilege)}). "
                             "Consult your administrator for the required privilege.")

    # -- requests --------------------------------------------------------------------------------------
    def handle(self, request: ApiRequest) -> ApiResponse | None:
        """Answer the requests this module owns; None for the rest (after the checks that apply to them)."""
        path = request.path.strip("/")
        if path == "RetrieveVersion()" and request.method == "GET":
            return ApiResponse.json({"@odata.context": f"{self.api_url}/$metadata#Microsoft.Dynamics.CRM."
                                                       "RetrieveVersionResponse",
                                     "Version": VERSIONS.get(self.api_version, VERSIONS["v9.2"])})
        name, key, rest = split_segment(path)
        if name == PRIVILEGE.entity_set or name == ROLE_PRIVILEGES.entity_set:
            self.sync_privileges()
        if request.method == "POST" and key is None and not rest:
            guarded = next((t for t in (ROLE, PUBLISHER, SOLUTION) if t.entity_set == name), None)
            if guarded is not None:
                self.require(self.user_id, f"prvCreate{guarded.schema_name}")
            return None
        owner = {SYSTEM_USER.entity_set: SYSTEM_USER, ROLE.entity_set: ROLE}.get(name)
        if owner is None or key is None or not rest:
            return None
        record = self._record(owner, key)
        if owner is ROLE and rest == "Microsoft.Dynamics.CRM.AddPrivilegesRole" and request.method == "POST":
            return self._add_privileges(record, request)
        navigation, _, ref = rest.partition("/")
        if (owner.logical_name, navigation) not in NAVIGATIONS:
            raise segment_not_found(rest)
        link, mine, theirs, target = NAVIGATIONS[(owner.logical_name, navigation)]
        if ref == "" and request.method == "GET":
            return self._related(record[owner.primary_key], link, mine, theirs, target, navigation, request)
        if ref == "$ref" and request.method == "POST":
            return self._add_reference(record[owner.primary_key], link, mine, theirs, target, request)
        raise segment_not_found(rest)

    def _record(self, owner: Table, key: str) -> dict[str, Any]:
        record_key = key.strip("'").lower()
        row = self.store.find(owner, {owner.primary_key: record_key})
        if row is None:
            raise not_found(owner.logical_name, record_key)
        return row

    def _related(self, owner_id: str, link: Table, mine: str, theirs: str, target: Table, navigation: str,
                 request: ApiRequest) -> ApiResponse:
        select = parse_select(target, request.query.get("$select"))
        rowids = [r[0] for r in self.store.db.execute(
            f'SELECT t."{ROWID}" FROM "{target.logical_name}" t JOIN "{link.logical_name}" l '
            f'ON l."{theirs}" = t."{target.primary_key}" WHERE l."{mine}" = ? ORDER BY t."{ROWID}"', (owner_id,))]
        rows = [self.store.row_json(target, rowid, tuple(select) if select else None) for rowid in rowids]
        context = f"{self.api_url}/$metadata#{target.entity_set}"
        body = '{"@odata.context":' + json.dumps(context) + ',"value":[' + ",".join(rows) + "]}"
        return ApiResponse(200, body.encode(), {"Content-Type": JSON_TYPE})

    def _add_reference(self, owner_id: str, link: Table, mine: str, theirs: str, target: Table,
                       request: ApiRequest) -> ApiResponse:
        body = request.json()
        reference = body.get("@odata.id") if isinstance(body, dict) else None
        if not isinstance(reference, str):
            raise bad_request("The request body must be an entity reference: {\"@odata.id\": \"<entity URL>\"}.")
        name, key, rest = split_segment(reference.split("/api/data/", 1)[-1].split("/", 1)[-1])
        if name != target.entity_set or key is None or rest:
            raise bad_request(f"The reference '{reference}' does not name a {target.logical_name}.")
        other = self._record(target, key)
        self.require(self.user_id, f"prvAssign{target.schema_name}" if target is ROLE else
                     f"prvWrite{target.schema_name}")
        with self.store.transaction():
            self._associate(link, mine, owner_id, theirs, other[target.primary_key])
        return ApiResponse(204)

    def _add_privileges(self, role: dict[str, Any], request: ApiRequest) -> ApiResponse:
        body = request.json()
        privileges = body.get("Privileges") if isinstance(body, dict) else None
        if not isinstance(privileges, list) or not privileges:
            raise bad_request("AddPrivilegesRole needs 'Privileges': a non-empty collection of RolePrivilege.")
        self.require(self.user_id, "prvWriteRole")
        self.sync_privileges()
        with self.store.transaction():
            for item in privileges:
                if not isinstance(item, dict) or not isinstance(item.get("PrivilegeId"), str):
                    raise bad_request("Every RolePrivilege needs a 'PrivilegeId'.")
                mask = _depth_mask(item.get("Depth"))
                if not mask:
                    raise bad_request(f"The privilege depth '{item.get('Depth')}' is not valid: Basic, Local, Deep "
                                      "or Global.")
                privilege = item["PrivilegeId"].lower()
                if self.store.find(PRIVILEGE, {"privilegeid": privilege}) is None:
                    raise not_found("privilege", privilege)
                self._grant(role["roleid"], privilege, mask)
        return ApiResponse(204)

    # -- links -----------------------------------------------------------------------------------------
    def _grant(self, role_id: str, privilege: str, mask: int) -> None:
        existing = self.store.find(ROLE_PRIVILEGES, {"roleid": role_id, "privilegeid": privilege})
        if existing is None:
            self.store.insert(ROLE_PRIVILEGES, {"roleid": role_id, "privilegeid": privilege,
                                                "privilegedepthmask": mask})
        elif existing["privilegedepthmask"] != mask:
            self.store.update(ROLE_PRIVILEGES, existing, {"privilegedepthmask": mask})

    def _associate(self, link: Table, mine: str, owner_id: str, theirs: str, other_id: str) -> None:
        if self.store.find(link, {mine: owner_id, theirs: other_id}) is None:
            self.store.insert(link, {mine: owner_id, theirs: other_id})
