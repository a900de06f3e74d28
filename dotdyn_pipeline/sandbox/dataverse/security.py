"""Security as Dataverse keeps it: business unit, users, roles, privileges, impersonation, and who may customise.

The organisation has one root business unit, the application user the sandbox's client signs in as (its
`applicationid` is the client id; WhoAmI answers its `systemuserid`), two people (USERS: Morgan Manager and Pat
Professional, who hold the solution's Email Marketing Manager and Email Marketing Professional roles once the
solution is installed), Microsoft's System Administrator, System Customizer and Basic User roles, and, unless the
organisation is bare, the solution's publisher, solution record and roles as its definition grants them (the
application user holds the connector's). Every table has the eight privileges Dataverse creates with it
(`prv{Right}{SchemaName}`); the customisation privileges are those of the metadata "tables" Entity, Attribute,
Relationship and EntityKey, and of SystemForm (AddSolutionComponent needs prvReadSystemForm); and there is
prvActOnBehalfOfAnotherUser (System Administrator holds it).

Impersonation as Microsoft documents it: a request whose `MSCRMCallerID` header names a user's `systemuserid` acts
as that user, if the application user holds prvActOnBehalfOfAnotherUser (else the documented missing-privilege
error, 403 `0x80040220`); rows it creates have `createdby` that user and `createdonbehalfby` the application user.
A user that does not exist is 404. (`CallerObjectId`, by Entra ID object id, is not served: the stand-in's users
have none.) The privileges checked stay the application user's.

Served: the entity sets `businessunits`, `systemusers`, `roles`, `privileges` (read only),
`systemuserrolescollection` and `roleprivilegescollection` (read only, the intersect tables of
`systemuserroles_association` and `roleprivileges_association`, Microsoft's many-to-many relationships, which
associations.py serves), the bound action `roles(id)/Microsoft.Dynamics.CRM.AddPrivilegesRole` and the function
`RetrieveVersion()`. The stand-in checks privileges where an installation needs them (metadata writes, creating
roles, publishers and solutions, giving roles privileges or users roles) and for impersonation; it does not check
them on data.

Option `dataverse.app_user_roles` (default `System Administrator`): comma-separated names of the Microsoft
roles the application user holds, e.g. `Basic User` for a user that may not customise nor impersonate.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from dotdyn_pipeline.sandbox.dataverse.errors import DataverseError, bad_request, not_found
from dotdyn_pipeline.sandbox.dataverse.messages import ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.odata import split_segment
from dotdyn_pipeline.sandbox.dataverse.schema import SECURITY_TABLES, Table
from dotdyn_pipeline.sandbox.dataverse.store import Store
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
#: The privilege impersonation needs, one of Microsoft's "miscellaneous" privileges (of no table).
IMPERSONATE = "prvActOnBehalfOfAnotherUser"
#: The miscellaneous privileges the stand-in knows.
MISCELLANEOUS = (IMPERSONATE,)
SYSTEM_ADMINISTRATOR, SYSTEM_CUSTOMIZER, BASIC_USER = "System Administrator", "System Customizer", "Basic User"
#: The people the organisation has besides the application user, and the solution's role each holds.
USERS = (("Morgan Manager", "Email Marketing Manager"), ("Pat Professional", "Email Marketing Professional"))
#: What the stand-in's API versions report from RetrieveVersion.
VERSIONS = {"v8.2": "8.2.2.0112", "v9.0": "9.0.2.3034", "v9.1": "9.1.0.14134", "v9.2": "9.2.25014.00171"}

BUSINESS_UNIT, SYSTEM_USER, ROLE, PRIVILEGE, PUBLISHER, SOLUTION, USER_ROLES, ROLE_PRIVILEGES = SECURITY_TABLES
READ_ONLY_SETS = {PRIVILEGE.entity_set, USER_ROLES.entity_set, ROLE_PRIVILEGES.entity_set}
#: Creating a record of these tables needs the table's Create privilege (the rest of the data is unchecked).
GUARDED_CREATES = {ROLE.logical_name, PUBLISHER.logical_name, SOLUTION.logical_name}
#: The privilege linking the rows of a security relationship needs (through either table's navigation property).
ASSOCIATION_PRIVILEGES = {"systemuserroles_association": "prvAssignRole",
                          "roleprivileges_association": "prvWritePrivilege"}


def application_user_id(seed: int) -> str:
    """The `systemuserid` of the application user the sandbox's client signs in as."""
    return record_id(seed, "systemuser", 0)


def user_id(seed: int, fullname: str) -> str:
    """The `systemuserid` of one of USERS, by full name."""
    return record_id(seed, "systemuser", 1 + [name for name, _ in USERS].index(fullname))


def privilege_id(name: str) -> str:
    return record_id(0, f"privilege:{name.lower()}", 0)


def privilege_rows(tables: Iterable[Table]) -> list[dict[str, Any]]:
    """The privileges of every table and of customisation, as `privilege` rows."""
    names = [t.schema_name for t in tables] + list(CUSTOMIZATION)
    return [{"privilegeid": privilege_id(f"prv{right}{name}"), "name": f"prv{right}{name}",
             "accessright": ACCESS_RIGHTS[right]} for name in names for right in solution.RIGHTS] + [
        {"privilegeid": privilege_id(name), "name": name, "accessright": 0} for name in MISCELLANEOUS]


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
        self.user_id = application_user_id(seed)
        self.people = {fullname: user_id(seed, fullname) for fullname, _ in USERS}
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
                self._give_role(self.user_id, roles[name])
            for fullname, person in self.people.items():
                first, last = fullname.lower().split()
                self.store.insert(SYSTEM_USER, {
                    "systemuserid": person, "fullname": fullname, "domainname": f"{first}.{last}@sandbox.example",
                    "businessunitid": self.business_unit_id, "isdisabled": 0, "accessmode": 0})
            self.assign_user_roles()

    def assign_user_roles(self) -> int:
        """Give each of USERS its solution role, where the organisation has that role (as an administrator does
        once the solution is installed); the number of roles newly given."""
        given = 0
        with self.store.transaction():
            for fullname, role_name in USERS:
                role = self.store.find(ROLE, {"name": role_name, "businessunitid": self.business_unit_id})
                if role is not None:
                    given += self._give_role(self.people[fullname], role["roleid"])
        return given

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
    def caller(self, headers: dict[str, str]) -> tuple[str, str | None]:
        """(the user a request acts as, the user acting on its behalf or None): the application user, or the user
        `MSCRMCallerID` names when the application user may act on behalf of others."""
        named = headers.get("mscrmcallerid", "").strip()
        if not named:
            return self.user_id, None
        try:
            person = str(uuid.UUID(named.strip("{}")))
        except ValueError:
            raise bad_request(f"The MSCRMCallerID header '{named}' is not a systemuserid (a GUID).") from None
        if person == self.user_id:
            return self.user_id, None
        self.require(self.user_id, IMPERSONATE)
        if self.store.find(SYSTEM_USER, {"systemuserid": person}) is None:
            raise not_found(SYSTEM_USER.logical_name, person)
        return person, self.user_id

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
        if (name == ROLE.entity_set and key is not None and rest == "Microsoft.Dynamics.CRM.AddPrivilegesRole"
                and request.method == "POST"):
            return self._add_privileges(self._record(ROLE, key), request)
        return None

    def _record(self, owner: Table, key: str) -> dict[str, Any]:
        record_key = key.strip("'").lower()
        row = self.store.find(owner, {owner.primary_key: record_key})
        if row is None:
            raise not_found(owner.logical_name, record_key)
        return row

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

    def _give_role(self, user: str, role_id: str) -> bool:
        """Give the user the role unless it holds it; whether it did not."""
        if self.store.find(USER_ROLES, {"systemuserid": user, "roleid": role_id}) is not None:
            return False
        self.store.insert(USER_ROLES, {"systemuserid": user, "roleid": role_id})
        return True
