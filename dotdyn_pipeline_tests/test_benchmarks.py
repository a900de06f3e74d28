"""The audience benchmark, at a small scale: it runs end to end and its last line holds the figures it promises."""

import json
import subprocess
import sys

import pytest


def test_the_audience_benchmark_measures_its_floor_on_a_fresh_twin_of_the_sandbox():
    run = subprocess.run([sys.executable, "-m", "dotdyn_pipeline.cli", "bench", "audience", "--contacts", "2000"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["floor_sandbox"] == "twin"
    assert result["rows"] > result["rows_loaded"] > 0, "some members are quarantined or skipped, most loaded"
    for name in ("seconds", "peak_rss_mb", "dataverse_requests", "dotdigital_calls", "floor_read_seconds",
                 "floor_upload_seconds", "floor_upload_rerun_seconds", "incremental_seconds", "incremental_calls"):
        assert result[name] > 0, name
    assert result["floor_seconds"] == pytest.approx(result["floor_read_seconds"] + result["floor_upload_seconds"],
                                                    abs=0.002)
    assert result["changed_contacts"] == 20 and 0 < result["incremental_rows_sent"] <= 2 * 20
    assert result["incremental_calls"] < result["dataverse_requests"] + result["dotdigital_calls"]
    assert set(result["asset_seconds"]) >= {"crm_contacts", "audience_members", "address_book_members"}
