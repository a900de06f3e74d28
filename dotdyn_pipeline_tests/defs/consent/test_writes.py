"""Which refused writes of the consent flow count as failures: a record gone is not one, an unknown path is."""

from dotdyn_pipeline.connectors.dataverse.client import RecordOutcome
from dotdyn_pipeline.defs.consent.to_dynamics import Writes


def test_a_deleted_record_is_done_but_a_path_the_service_lacks_fails_its_entries():
    writes = Writes()
    writes.add("gone", {"contactid": "a"}, entry=0)
    writes.add("unknown action", {"contactid": "b"}, entry=1)
    writes.add("written", {"contactid": "c"}, entry=2)
    outcomes = [RecordOutcome(0, False, 404, "0x80040217", "contact With Id = a Does Not Exist"),
                RecordOutcome(1, False, 404, "0x80060888", "Resource not found for the segment 'RemoveMemberList'."),
                RecordOutcome(2, True, 204)]

    failed = writes.send(lambda rows: outcomes[:len(rows)])

    assert failed == {1: "0x80060888 Resource not found for the segment 'RemoveMemberList'."}
