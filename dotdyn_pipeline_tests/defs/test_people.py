"""Finding the CRM person behind a Dotdigital contact: the id map first, then the address in the mirror."""


from dotdyn_pipeline.defs.people import Person, PersonResolver, person_binds, suppression_row
from dotdyn_pipeline.state import ContactLink, MirrorRow


def _person(crm_id: str, email: str, modified: str) -> MirrorRow:
    return MirrorRow(crm_id, {"emailaddress1": email, "modifiedon": modified}, email_key=email.lower())


def test_the_id_map_wins_then_the_address_by_precedence(store):
    store.mirror.upsert("lead", [_person("l-1", "shared@example.com", "2026-03-01T00:00:00Z")])
    store.mirror.upsert("contact", [_person("c-old", "Shared@Example.com", "2026-01-01T00:00:00Z"),
                                    _person("c-new", "shared@example.com", "2026-02-01T00:00:00Z"),
                                    _person("c-map", "mapped@example.com", "2026-02-01T00:00:00Z")])
    store.link_contacts([ContactLink("acc", "contact", "c-map", "mapped@example.com", 11)])
    found = PersonResolver(store, "acc").resolve([(11, "renamed@example.com"), (12, " SHARED@example.com"),
                                                  (None, "nobody@example.com")])
    assert found[11, "renamed@example.com"] == Person("contact", "c-map"), "the id map, whatever the address"
    assert found[12, " SHARED@example.com"] == Person("contact", "c-new"), "a contact, the newest one"
    assert found[None, "nobody@example.com"] is None
    assert [link.crm_id for link in store.links_for_contacts("acc", [12])[12]] == ["c-new"], "learned into the id map"
    assert store.links_for_contacts("other", [12]) == {}, "per account"


def test_everyone_with_an_address_in_precedence_order(store):
    store.mirror.upsert("account", [_person("a-1", "x@example.com", "2026-01-01")])
    store.mirror.upsert("lead", [_person("l-1", "x@example.com", "2026-01-01")])
    store.mirror.upsert("contact", [_person("c-1", "x@example.com", "2026-01-01")])
    everyone = PersonResolver(store, "acc").everyone_with(["X@example.com", "y@example.com"])
    assert everyone == {"x@example.com": [Person("contact", "c-1"), Person("lead", "l-1"), Person("account", "a-1")]}


def test_rows_link_only_the_person_found():
    assert person_binds(None) == {}
    row = suppression_row("acc", " Someone@Example.com ", None, "2026-03-01T00:00:00Z", "dotdigital",
                          Person("account", "a-1"))
    assert row["esc_email"] == "someone@example.com" and row["esc_reason"] == "Suppressed"
    assert row["esc_accountid@odata.bind"] == "/accounts(a-1)" and row["_esc_emailaccountid_value"] == "acc"
