"""The member frame, from the mirror's rows to the contacts the load sends."""

from __future__ import annotations

from dotdyn_pipeline.defs.audience.contacts import fingerprints
from dotdyn_pipeline.defs.audience.datafields import convert_frame
from dotdyn_pipeline.defs.audience.members import DataMapping, member_frame
from dotdyn_pipeline.defs.audience.selection import apply_consent, one_per_email
from dotdyn_pipeline.schemas.audience import AudienceMember
from dotdyn_pipeline.schemas.quarantine import split_valid

GUID = "1d00fd12-c041-4d4f-86bb-7f8aabed2996"
MAPPINGS = [DataMapping("contact", "firstname", "FIRSTNAME", "String"),
            DataMapping("contact", "numberofchildren", "CHILDREN", "Numeric")]


def _through_the_flow(members):
    frame = member_frame(members, MAPPINGS)
    consent = apply_consent(frame, opted_out=set(), unsubscribed=set(), list_unsubscribed={})
    unique = one_per_email(split_valid(consent.kept, AudienceMember).valid).kept
    converted, failures = convert_frame(unique, {m.field: m.type for m in MAPPINGS})
    return converted, failures, fingerprints(converted, ["CHILDREN", "FIRSTNAME"])


def test_a_sync_with_nobody_in_scope_validates_and_maps_an_empty_batch():
    converted, failures, prints = _through_the_flow(iter([]))
    assert (len(converted), len(failures), len(prints)) == (0, 0, 0)


def test_members_become_typed_rows_with_their_mapped_fields():
    data = {"emailaddress1": " Ann@Example.COM", "firstname": "Ann", "numberofchildren": 2, "statecode": 0,
            "modifiedon": "2026-11-01T10:00:00Z"}
    converted, failures, prints = _through_the_flow(iter([(GUID, "contact", GUID, data)]))
    assert converted[["email", "FIRSTNAME", "CHILDREN"]].values.tolist() == [["Ann@example.com", "Ann", "2"]]
    assert len(failures) == 0 and prints.str.len().tolist() == [16]


def test_text_columns_are_checked_by_their_dtype():
    """pandera checks an object column's type value by value; the member frame's text is typed as text."""
    frame = member_frame(iter([(GUID, "contact", GUID, {"emailaddress1": "ann@example.com"})]), MAPPINGS)
    assert {name: str(frame[name].dtype) for name in ("list_id", "crm_table", "crm_id", "email", "email_raw")} == \
        dict.fromkeys(("list_id", "crm_table", "crm_id", "email", "email_raw"), "string")


def test_a_fingerprint_changes_with_any_sent_value_and_only_with_them():
    import pandas as pd

    frame = pd.DataFrame({"email": ["ann@example.com"] * 4, "A": ["1", "1", "2", "1"], "B": ["x", "x", "x", "y"],
                          "crm_id": ["one", "two", "one", "one"]}).astype("string")
    prints = fingerprints(frame, ["A", "B"]).tolist()
    assert prints[0] == prints[1], "what is not sent does not count"
    assert len({prints[0], prints[2], prints[3]}) == 3
    assert fingerprints(frame.iloc[::-1], ["A", "B"]).tolist() == prints[::-1], "a row's digest is its own"
    digests = pd.util.hash_pandas_object(frame[["email", "A", "B"]], index=False)
    assert prints == [f"{digest:016x}" for digest in digests], "the digests stored by earlier syncs still match"


def test_each_list_reads_its_members_from_the_table_of_its_member_type(store):
    """A list's members are all of its member type (createdfromcode): a link to a record of another table is
    not one of its members; a list whose type is unknown looks in every people table."""
    from dotdyn_pipeline.defs.audience.members import by_member_table
    from dotdyn_pipeline.state import MirrorRow

    store.mirror.upsert("contact", [MirrorRow("c1", {"emailaddress1": "ann@example.com"}, "ann@example.com")])
    store.mirror.upsert("lead", [MirrorRow("l1", {"emailaddress1": "cy@example.com"}, "cy@example.com")])
    store.mirror.upsert("listmember", [MirrorRow(f"m{n}", {}, parent_id=parent, ref_id=ref) for n, (parent, ref) in
                                       enumerate([("C", "c1"), ("C", "l1"), ("L", "l1"), ("U", "c1"), ("U", "l1")])])
    lists = [{"listid": "C", "createdfromcode": 2}, {"listid": "L", "createdfromcode": 4},
             {"listid": "X", "createdfromcode": 2}, {"listid": "U"}]
    groups = by_member_table(lists)
    assert groups == [(("listmember", ("contact",)), ["C", "X"]), (("listmember", ("lead",)), ["L"]),
                      (("listmember", ("contact", "lead", "account")), ["U"])]
    found = {(parent, table, crm_id) for (_, tables), ids in groups
             for parent, table, crm_id, _ in store.mirror.members("listmember", ids, tables)}
    assert found == {("C", "contact", "c1"), ("L", "lead", "l1"), ("U", "contact", "c1"), ("U", "lead", "l1")}


def test_every_member_in_two_processes_is_the_frame_of_one(state_url, tmp_path):
    """Half the records' members read and shaped in a forked process: the same rows, values and types."""
    import uuid

    import pandas as pd

    from dotdyn_pipeline.defs.audience.members import every_member
    from dotdyn_pipeline.resources import StateStoreResource
    from dotdyn_pipeline.state import MirrorRow, StateStore

    url, schema = state_url
    state = (StateStoreResource(home=str(tmp_path)) if url.startswith("sqlite") else
             StateStoreResource(postgres_url=url, schema_name=schema))
    store = StateStore.open(url, schema)
    ids = [str(uuid.UUID(int=n * 0x0FFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFF7 % 2**128)) for n in range(1, 61)]
    assert {i[0] < "8" for i in ids} == {True, False}, "records on both sides of the split"
    store.mirror.upsert("contact", [MirrorRow(i, {"emailaddress1": f"{n}@example.com", "firstname": f"N{n % 7}",
                                                  "numberofchildren": n % 3 or None, "statecode": 0,
                                                  "modifiedon": f"2026-11-{n % 28 + 1:02d}T10:00:00Z"},
                                              f"{n}@example.com") for n, i in enumerate(ids)])
    store.mirror.upsert("listmember", [MirrorRow(f"m{n}", {}, parent_id=GUID if n % 2 else "L2", ref_id=i)
                                       for n, i in enumerate(ids)])
    lists = [{"listid": GUID, "createdfromcode": 2}, {"listid": "L2", "createdfromcode": 2}]
    try:
        one = every_member(state, store, lists, MAPPINGS, in_two=False)
        two = every_member(state, store, lists, MAPPINGS, in_two=True)
    finally:
        store.close()
    assert len(one) == 60 and (one.dtypes == two.dtypes).all()
    ordered = [frame.sort_values(["list_id", "crm_id"], ignore_index=True) for frame in (one, two)]
    pd.testing.assert_frame_equal(*ordered)

