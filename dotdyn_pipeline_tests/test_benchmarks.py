"""The benchmarks, at a small scale: they run end to end and their last lines hold the figures they promise."""

import json
import subprocess
import sys
import time

import psutil
import pytest

from dotdyn_pipeline.bench.measure import run_memory


def _holding_200_mb() -> subprocess.Popen:
    """A process that holds 200 MB until its standard input closes or it is killed, once it says so."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; block = bytearray(200 * 2**20); "
                                "print('held', flush=True); sys.stdin.read()"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "held\n"
    return process


def test_run_memory_adds_up_the_processes_started_in_the_block_and_leaves_out_those_before():
    before = _holding_200_mb()
    try:
        with run_memory(interval=0.05) as memory:
            started = _holding_200_mb()
            own, deadline = psutil.Process().memory_full_info().pss / 2**20, time.monotonic() + 10
            while memory.total_mb < own + 200 and time.monotonic() < deadline:
                time.sleep(0.05)  # until a sample has seen the child holding its memory
            started.kill()
            started.wait()
    finally:
        before.kill()
        before.wait()
    assert own + 200 < memory.total_mb < own + 200 + 150, "the process started in the block, not the one before"
    assert memory.rss_sum_mb >= memory.total_mb, "shared pages count once in the total, in every resident set"
    assert memory.largest_mb >= 200


def test_run_memory_counts_pages_that_forked_processes_share_once():
    """A step process forked from a server that has imported the code location shares its pages: the total
    counts them once, the resident sets added up count them in each process."""
    code = ("import os, sys; block = bytearray(200 * 2**20); pid = os.fork(); "
            "print('held', flush=True) if pid else None; sys.stdin.read()")
    own_rss = psutil.Process().memory_info().rss / 2**20
    with run_memory(interval=0.05) as memory:
        parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert parent.stdout.readline() == "held\n"
            deadline = time.monotonic() + 10
            # Until a sample has seen both processes holding the block. (This process's own resident set may
            # exceed its proportional share by more than a block late in a long test session, when it has
            # forked other processes: only the growth over its own resident set says the sample saw both.)
            while memory.rss_sum_mb < own_rss + 2 * 200 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            for child in psutil.Process(parent.pid).children():
                child.kill()
            parent.kill()
            parent.wait()
    own = psutil.Process().memory_full_info().pss / 2**20
    assert memory.rss_sum_mb > own + 2 * 200, "each process's resident set holds the block"
    assert own + 200 < memory.total_mb < own + 200 + 120, "the block counts once in the total"


def test_the_audience_benchmark_measures_its_floor_on_a_fresh_twin_of_the_sandbox():
    run = subprocess.run([sys.executable, "-m", "dotdyn_pipeline.cli", "bench", "audience", "--contacts", "2000"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["floor_sandbox"] == "twin"
    assert result["rows"] > result["rows_loaded"] > 0, "some members are quarantined or skipped, most loaded"
    assert result["peak_rss_sum_mb"] > result["peak_process_rss_mb"] > 0, "the full run's step processes are counted"
    assert result["peak_rss_sum_mb"] >= result["peak_rss_mb"] > 0, "shared pages count once in peak_rss_mb"
    for name in ("seconds", "dataverse_requests", "dotdigital_calls", "floor_read_seconds",
                 "floor_upload_seconds", "floor_upload_rerun_seconds", "incremental_seconds", "incremental_calls"):
        assert result[name] > 0, name
    assert result["floor_seconds"] == pytest.approx(result["floor_read_seconds"] + result["floor_upload_seconds"],
                                                    abs=0.002)
    assert result["changed_contacts"] == 20 and result["address_books"] > 1
    # Only the changed people are sent again: each at most once per book of the account (static and dynamic
    # lists overlap), far fewer than the first run's rows.
    assert 0 < result["incremental_rows_sent"] <= result["changed_contacts"] * result["address_books"]
    assert result["incremental_rows_sent"] < result["rows_loaded"] / 10
    assert result["incremental_calls"] < result["dataverse_requests"] + result["dotdigital_calls"]
    assert set(result["asset_seconds"]) >= {"crm_contacts", "audience_members", "address_book_members"}


def test_the_dynamic_list_benchmark_loads_who_entered_and_left_the_query_and_measures_its_floor():
    run = subprocess.run([sys.executable, "-m", "dotdyn_pipeline.cli", "bench", "dynamic-list", "--contacts", "2000"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["rows"] == result["query_rows"], "the flow's evaluation holds what a bare read of the query holds"
    assert 0.4 * 2000 < result["rows"] < 0.6 * 2000, "the list selects about half of the contacts"
    assert result["rows"] > result["rows_loaded"] > 0, "some members are quarantined or skipped, most loaded"
    assert result["changed_contacts"] == 20
    assert (result["entered"], result["left"]) == (result["expected_entered"], result["expected_left"])
    assert result["entered"] > 0 and result["left"] > 0, "the change moves people both ways"
    assert 0 < result["incremental_rows_sent"] <= result["changed_contacts"]
    assert result["peak_rss_sum_mb"] >= result["peak_rss_mb"] > 0
    for name in ("seconds", "dataverse_requests", "dotdigital_calls", "query_pages", "floor_read_seconds",
                 "floor_upload_seconds", "incremental_seconds", "incremental_calls"):
        assert result[name] > 0, name
    assert result["floor_seconds"] == pytest.approx(result["floor_read_seconds"] + result["floor_upload_seconds"],
                                                    abs=0.002)
    assert set(result["asset_seconds"]) >= {"dynamic_list_members", "audience_members", "address_book_members"}
