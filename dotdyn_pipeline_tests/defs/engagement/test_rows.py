"""Shaping Dotdigital engagement into esc_ rows: natural keys, whole seconds, campaign links."""

from datetime import UTC, datetime

from dotdyn_pipeline.connectors.dotdigital.models import Campaign, CampaignSummary, Click
from dotdyn_pipeline.defs.engagement.rows import CLICKS, campaign_row, click_row, dataverse_time, dynamics_campaign
from dotdyn_pipeline.defs.people import Person

ACCOUNT = "6f1c3c3e-8f59-4a43-9a68-0d5b0f0e0a11"


def test_times_are_kept_to_the_whole_second_in_utc():
    whole = datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)
    assert dataverse_time(datetime(2026, 3, 1, 10, 0, 5, 987000, tzinfo=UTC)) == whole
    assert dataverse_time(datetime(2026, 3, 1, 10, 0, 5)) == datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)
    assert dataverse_time(None) is None


def test_two_reads_of_one_click_have_one_key_and_the_person_is_bound():
    click = Click(7, 42, "a@example.com", "https://example.com/x", datetime(2026, 3, 1, 10, 0, 5, 120000, tzinfo=UTC))
    again = Click(7, 42, "a@example.com", "https://example.com/x", datetime(2026, 3, 1, 10, 0, 5, 880000, tzinfo=UTC))
    person = Person("lead", "0b7b7f55-7c57-4f0e-9d73-6b4dd0c3c0a1")
    row = click_row(ACCOUNT, click, person)
    assert CLICKS.key_of(row) == CLICKS.key_of(click_row(ACCOUNT, again, None))
    assert row["esc_leadid@odata.bind"] == f"/leads({person.crm_id})"
    assert "esc_contactid@odata.bind" not in row
    assert row["esc_emailcampaignid@odata.bind"] == (
        f"/esc_emailcampaigns(_esc_emailaccountid_value={ACCOUNT},esc_dotdigitalcampaignid=7)")


def test_a_campaign_is_linked_to_the_dynamics_campaign_whose_code_its_name_carries():
    codes = {"CMP-1000": "c0", "CMP-1001": "c1"}
    assert dynamics_campaign("Spring sale #1 [CMP-1001]", codes) == "c1"
    assert dynamics_campaign("Spring sale #1 [cmp-1000]", codes) == "c0"
    assert dynamics_campaign("Spring sale [CMP-9999]", codes) is None
    assert dynamics_campaign("No code here", codes) is None


def test_a_campaign_row_carries_the_summary_as_the_api_defines_it():
    summary = CampaignSummary.from_api(7, {
        "dateSent": "2026-03-01T09:00:00.250Z", "numTotalSent": 100, "numTotalDelivered": 95,
        "numTotalUniqueOpens": 40, "numTotalOpens": 55, "numTotalClicks": 12, "numRecipientsClicked": 9,
        "numTotalUnsubscribes": 1, "numTotalHardBounces": 3, "numTotalSoftBounces": 2, "numTotalIspComplaints": 0,
        "percentageDelivered": 0.95, "percentageUniqueOpens": 0.4211, "revenue": "£1,234.50", "numOrders": 4})
    row = campaign_row(ACCOUNT, Campaign(7, "Spring [CMP-1000]"), summary, datetime(2026, 3, 2, tzinfo=UTC), "c0")
    assert (row["esc_numsent"], row["esc_numdelivered"], row["esc_numuniqueopens"]) == (100, 95, 40)
    assert (row["esc_percentagedelivered"], row["esc_percentageuniqueopens"]) == (0.95, 0.4211)
    assert (row["esc_revenue"], row["esc_numorders"]) == (1234.5, 4)
    assert row["esc_datesent"] == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert row["esc_campaignid@odata.bind"] == "/campaigns(c0)"
