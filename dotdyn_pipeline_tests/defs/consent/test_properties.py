"""A property of the whole consent flow: whatever the order of imports, CRM edits, unsubscribes, resubscribes,
sensor ticks, runs and crashes, no one who unsubscribed ends up subscribed, and no event is lost or applied
twice. Every step acts on the sandbox (Dynamics and Dotdigital over HTTPS) and the real state store.

The runs call the consent run's two steps directly (a Dagster run around them adds nothing here); a crash is
the one thing the sandbox cannot make, so the state store is wrapped to fail right after the other side
accepted a write and before the ledger moves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient, DotdigitalConfig, NotFound, connect
from dotdyn_pipeline.defs.consent.to_dotdigital import apply_to_dotdigital
from dotdyn_pipeline.defs.consent.to_dynamics import apply_to_dynamics, reflect_resubscribes
from dotdyn_pipeline.defs.people import SUPPRESSION_KEY
from dotdyn_pipeline.resources import state_store_resource
from dotdyn_pipeline.state import StateStore
from dotdyn_pipeline_tests.defs.consent.consent_helpers import SENSORS, crm_client, status, suppress, tick

PEOPLE_PER_EXAMPLE = 2
EXAMPLES = 4  # random interleavings per run, besides the explicit ones: each takes a few seconds
POOL = 60  # people made up front: enough for the examples and a shrink, should one fail


class Crash(RuntimeError):
    """The process died here."""


class CrashingStore:
    """The state store, except that the first attempt to mark an entry propagated dies."""

    def __init__(self, store: StateStore) -> None:
        self._store, self.crashed = store, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def mark_propagated(self, event_key: str) -> None:
        if not self.crashed:
            self.crashed = True
            raise Crash("killed after the other side accepted, before the ledger moved")
        self._store.mark_propagated(event_key)


@dataclass
class Arena:
    """One account synced, its newsletter list and book, and fresh CRM contacts on that list."""

    world: Any
    pipeline: Any
    store: StateStore
    client: DotdigitalClient
    account: str
    list_id: str
    book: int
    pool: list[dict[str, str]] = field(default_factory=list)

    def run(self, store: Any = None) -> None:
        """The consent run of the account: both directions."""
        store = store or self.store
        with crm_client(self.world) as crm:
            reflect_resubscribes(crm, store, self.account, "donotbulkemail")
            apply_to_dynamics(crm, store, self.account, "donotbulkemail")
        apply_to_dotdigital(self.client, store, self.account)

    def settle(self) -> None:
        for _ in range(4):
            if not [request for name in SENSORS for request in tick(self.pipeline, name).run_requests]:
                return
            self.run()
        raise AssertionError("the consent flow did not settle")


@pytest.fixture(scope="module")
def arena(world, pipeline) -> Iterator[Arena]:
    account, other = pipeline.accounts
    pipeline.instance.delete_dynamic_partition("email_account", pipeline.key(other))  # one account: short examples
    assert pipeline.sync(account).success
    (newsletter,) = [row for row in world.rows("lists") if row["_esc_emailaccountid_value"] == account
                     and row["esc_activatedforemail"] and not row["type"] and row["createdfromcode"] == 2]
    pool = []
    for number in range(POOL):
        contact_id, email = str(uuid.uuid4()), f"prop.{number}.{uuid.uuid4().hex[:6]}@example.org"
        world.put_row("contacts", {"contactid": contact_id, "emailaddress1": email, "firstname": "Prop",
                                   "lastname": str(number), "donotbulkemail": False, "statecode": 0})
        world.put_row("listmembers", {"listmemberid": str(uuid.uuid4()), "_listid_value": newsletter["listid"],
                                      "_entityid_value": contact_id, "entitytype": "contact",
                                      "_entityid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "contact"})
        pool.append({"contactid": contact_id, "email": email})
    assert pipeline.sync(account).success  # the mirror now knows them
    login = world.contract["accounts"][world.account_number(account) - 1]
    config = DotdigitalConfig(api_user=login["api_user"], api_password=login["api_password"],
                              base_url=world.contract["dotdigital_url"], transport=login["transport"],
                              ca_bundle=world.contract["ca_cert"], poll_initial=0.2)
    store = state_store_resource().open()
    with connect(config) as client:
        arena = Arena(world, pipeline, store, client, account, newsletter["listid"], newsletter["esc_addressbookid"],
                      pool)
        arena.settle()
        yield arena
    store.close()


@dataclass
class Person:
    """What the test knows about one person: their address, and what they did last."""

    contact_id: str
    email: str
    last: str | None = None  # "unsubscribe" or "resubscribe", account-wide, on either side
    from_dotdigital: bool = False  # the last unsubscribe was made in Dotdigital
    unseen_opt_out: bool = False  # set in Dynamics and no Dynamics tick has looked since
    flag_cleared: bool = False  # a CRM user cleared the flag after the last unsubscribe
    left_book: bool = False


def _flag(arena: Arena, person: Person) -> bool:
    (row,) = arena.world.rows("contacts", **{"$filter": f"contactid eq {person.contact_id}"})
    return bool(row["donotbulkemail"])


def act(arena: Arena, people: list[Person], action: str, who: int) -> None:
    person, world = people[who], arena.world
    if action == "import":  # an import that was planned before anything below happened: it sends them anyway
        arena.client.import_contacts(arena.book, [{"Email": person.email, "FIRSTNAME": "Imported"}],
                                     ["Email", "FIRSTNAME"])
    elif action == "dd_unsubscribe":
        suppress(world, arena.account, person.email)
        person.last, person.from_dotdigital, person.flag_cleared = "unsubscribe", True, False
    elif action == "dd_book_unsubscribe":
        try:
            arena.client.unsubscribe(person.email, arena.book)
            person.left_book = True
        except NotFound:  # never imported: there is nothing to leave
            pass
    elif action == "crm_opt_out" and not _flag(arena, person):
        world.put_row("contacts", {"contactid": person.contact_id, "donotbulkemail": True})
        person.last, person.from_dotdigital, person.unseen_opt_out = "unsubscribe", False, True
        person.flag_cleared = False
    elif action == "crm_clear" and _flag(arena, person):
        world.put_row("contacts", {"contactid": person.contact_id, "donotbulkemail": False})
        if person.unseen_opt_out and person.last == "unsubscribe":  # withdrawn before anyone saw it
            person.last = None
        person.flag_cleared, person.unseen_opt_out = True, False
    elif action == "dd_resubscribe":
        response = world.http.post(f"/dotdigital/accounts/{world.account_number(arena.account)}/resubscribe",
                                   json={"email": person.email})
        if response.status_code == 200:
            person.last = "resubscribe"
    elif action == "tick_dotdigital":
        tick(arena.pipeline, "dotdigital_consent")
    elif action == "tick_dynamics":
        tick(arena.pipeline, "dynamics_consent")
        for someone in people:
            someone.unseen_opt_out = False
    elif action == "run":
        arena.run()
    elif action == "crash":
        try:
            arena.run(CrashingStore(arena.store))
        except Crash:
            pass


def check(arena: Arena, people: list[Person]) -> None:
    world, store, account = arena.world, arena.store, arena.account
    emails = {person.email for person in people}
    entries = [entry for entry in store.ledger(account) if entry.event.email in emails]
    assert [e for e in entries if e.propagated_at is None] == [], "every event reached the other side"
    assert [e for e in entries if e.resubscribed_at and not e.reflected_at] == [], "every resubscribe reflected"
    open_slots = [(e.event.email, e.event.scope, e.event.address_book_id) for e in entries if not e.resubscribed_at]
    assert len(open_slots) == len(set(open_slots)), "no unsubscribe recorded twice"
    suppressions = [row for row in world.rows("esc_emailsupressions") if row["esc_email"] in emails]
    keys = [tuple(row[column] for column in SUPPRESSION_KEY) for row in suppressions]
    assert len(keys) == len(set(keys)), "one esc_emailsupression row per account and address"
    leavers = [row["esc_email"] for row in world.rows("esc_listunsubscribers") if row["esc_email"] in emails]
    assert len(leavers) == len(set(leavers)), "one esc_listunsubscriber row per list and address"
    book = {member["email"] for member in world.book_members(account, arena.book)}
    for person in people:
        if person.last == "unsubscribe":
            assert status(world, account, person.email) not in (None, "Subscribed"), f"{person} is subscribed"
            if person.from_dotdigital and not person.flag_cleared:
                assert _flag(arena, person), f"{person}: Dynamics does not show the unsubscribe"
        if person.left_book:
            assert person.email not in book, f"{person} is back in the address book"


STEPS = st.one_of(
    st.tuples(st.sampled_from(["import", "dd_unsubscribe", "dd_book_unsubscribe", "crm_opt_out", "crm_clear",
                               "dd_resubscribe"]), st.integers(0, PEOPLE_PER_EXAMPLE - 1)),
    st.tuples(st.sampled_from(["tick_dotdigital", "tick_dynamics", "run", "crash"]), st.just(0)),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(STEPS, min_size=4, max_size=10))
# besides the random ones, the interleavings that once mattered most
@example(steps=[("import", 0), ("dd_unsubscribe", 0), ("tick_dotdigital", 0), ("crash", 0), ("import", 0),
                ("crm_opt_out", 1), ("tick_dynamics", 0), ("crash", 0)])
@example(steps=[("import", 0), ("dd_unsubscribe", 0), ("tick_dotdigital", 0), ("run", 0), ("dd_resubscribe", 0),
                ("crm_opt_out", 1), ("tick_dotdigital", 0), ("crm_clear", 0)])
@example(steps=[("import", 0), ("import", 1), ("dd_book_unsubscribe", 0), ("crm_opt_out", 1), ("crm_clear", 1),
                ("tick_dynamics", 0), ("dd_unsubscribe", 0), ("dd_resubscribe", 0)])
@example(steps=[("crm_opt_out", 0), ("tick_dynamics", 0), ("crm_clear", 0), ("crash", 0), ("dd_resubscribe", 0),
                ("import", 0), ("crm_opt_out", 0)])
@example(steps=[("crm_opt_out", 0), ("tick_dynamics", 0), ("import", 0), ("tick_dotdigital", 0)])
def test_no_unsubscribe_is_lost_applied_twice_or_undone_by_the_pipeline(arena, steps):
    people = [Person(p["contactid"], p["email"]) for p in (arena.pool.pop() for _ in range(PEOPLE_PER_EXAMPLE))]
    for action, who in steps:
        act(arena, people, action, who)
    arena.settle()
    check(arena, people)
