"""Distributed faults under torchrun: one rank dying ends the run on every rank, in bounded
time, with an error that names the rank that died (no rank is left waiting for it)."""


def test_one_rank_dying_stops_the_others_with_a_message(torchrun_chain):  # the session fixture in conftest.py
    death = torchrun_chain["death"]
    assert death["returncode"] != 0
    assert death["seconds"] < 60  # torchrun's own start-up included; the stop itself takes about a second
    assert death["workers_seen"] == 2 and death["workers_alive_after"] == []
    report = death["stderr"]
    assert "Root Cause (first observed failure)" in report
    root_cause = report.split("Root Cause (first observed failure)", 1)[1]
    assert "rank      : 1 (local_rank: 1)" in root_cause and "Signal 9 (SIGKILL)" in root_cause
