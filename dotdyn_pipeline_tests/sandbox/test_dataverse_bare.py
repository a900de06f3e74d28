"""A bare organisation (`dotdyn sandbox up --bare`): Microsoft's tables and the seeded people, lists and
campaigns, and nothing of the solution until it is provisioned, over real HTTPS."""

from __future__ import annotations

from dotdyn_pipeline.sandbox.dataverse.seed import LISTS
from dotdyn_pipeline.solution import schema as solution
from dotdyn_pipeline_tests.sandbox import bare_helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import error_of

bare_sandbox, bare_dv, bare_control = bare_helpers.bare_sandbox, bare_helpers.bare_dv, bare_helpers.bare_control


def test_the_contract_says_bare(bare_sandbox):
    assert bare_sandbox["bare"] is True


def test_no_table_or_column_of_the_solution_exists(bare_dv):
    names = [d["LogicalName"] for d in bare_dv.get("EntityDefinitions", params={"$select": "LogicalName"}
                                                   ).json()["value"]]
    assert {"contact", "lead", "account", "list", "listmember", "campaign"} <= set(names)
    assert not [n for n in names if n.startswith(solution.PREFIX + "_")]
    assert bare_dv.get("esc_emailaccounts").status_code == 404
    missing = bare_dv.get("EntityDefinitions(LogicalName='esc_emailaccount')")
    assert missing.status_code == 404 and "MetadataCache" in error_of(missing)["message"]
    columns = [a["LogicalName"] for a in bare_dv.get("EntityDefinitions(LogicalName='list')/Attributes",
                                                     params={"$select": "LogicalName"}).json()["value"]]
    assert "listname" in columns and not [c for c in columns if c.startswith("esc_")]
    refused = bare_dv.get("lists", params={"$select": "listname,esc_activatedforemail"})
    assert refused.status_code == 400 and "esc_activatedforemail" in error_of(refused)["message"]


def test_people_lists_members_and_campaigns_are_seeded(bare_dv):
    def count(entity_set: str) -> int:
        return int(bare_dv.get(f"{entity_set}/$count").text)

    assert (count("contacts"), count("leads"), count("accounts")) == (200, 50, 30)
    lists = bare_dv.get("lists", params={"$select": "listname,createdfromcode,type"}).json()["value"]
    assert len(lists) == 2 * len(LISTS) and {row["createdfromcode"] for row in lists} == {1, 2, 4}
    assert count("listmembers") > 0 and count("campaigns") == 4


def test_solution_data_waits_for_the_solution(bare_control):
    refused = bare_control.post("/dataverse/solution-data")
    assert refused.status_code == 409
    message = refused.json()["error"]["message"]
    assert "table esc_emailaccount" in message and "column list.esc_activatedforemail" in message
