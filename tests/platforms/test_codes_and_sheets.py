"""Per-session completion codes (unique, unguessable, checked) and bonus sheets per platform."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from hype.models import Assignment
from hype.monitoring import exclude
from hype.platforms.codes import check_session_code, new_session_code
from hype.platforms.sheets import bonus_sheet

pytestmark = pytest.mark.db


def test_codes_are_long_random_and_distinct():
    codes = {new_session_code() for _ in range(20_000)}
    assert len(codes) == 20_000
    assert all(re.fullmatch(r"[A-Z2-7]{16}", c) for c in codes)  # 80 bits in base32


def test_each_finished_session_gets_its_own_code_checked_against_its_worker(session, study, crowd):
    ids = [crowd(f"W{k}", "mturk") for k in range(3)] + [crowd("WF", "mturk", accuracy=0.0, qualify=False)]
    codes = [session.get(Assignment, i).completion_code for i in ids]
    assert len(set(codes)) == 4 and study.completion_code not in codes and study.qualification_fail_code not in codes
    assert check_session_code(session, study, "mturk", "W0", codes[0]).ok
    assert check_session_code(session, study, "mturk", "W0", f" {codes[0].lower()} ").ok  # pasted with spaces, lower case
    shared = check_session_code(session, study, "mturk", "W1", codes[0])
    assert not shared.ok and "another worker" in shared.reason
    forged = check_session_code(session, study, "mturk", "W2", new_session_code())
    assert not forged.ok and "not issued" in forged.reason
    study_wide = check_session_code(session, study, "mturk", "W2", study.completion_code)
    assert not study_wide.ok, "the study's shared Prolific code is no per-session code"
    assert not check_session_code(session, study, "mturk", "W2", "").ok


def test_bonus_sheets_use_platform_ids_and_leave_out_excluded_workers(session, study, crowd):
    good = crowd("WGOOD", "mturk", accuracy=1.0)
    bad = crowd("WBAD", "mturk", accuracy=1.0)
    crowd("WFAIL", "mturk", accuracy=0.0, qualify=False)
    crowd("PGOOD", "prolific", accuracy=1.0)
    exclude(session, study, bad, "spoke to us")
    session.commit()

    mturk_rows = list(csv.DictReader(io.StringIO(bonus_sheet(session, study, "mturk"))))
    assert [(r["WorkerId"], r["AssignmentId"], r["BonusAmount"]) for r in mturk_rows] == [("WGOOD", "ASGWGOOD", "0.20")]
    assert str(good) not in mturk_rows[0]["AssignmentId"]  # MTurk's id, not hype's
    assert bonus_sheet(session, study, "prolific") == "PGOOD,0.20\n"
    everyone = list(csv.DictReader(io.StringIO(bonus_sheet(session, study, "hype"))))
    assert {(r["worker_id"], r["platform_assignment_id"], r["bonus_usd"]) for r in everyone} == {
        ("WGOOD", "ASGWGOOD", "0.20"), ("WFAIL", "ASGWFAIL", "0.00"), ("PGOOD", "sess-PGOOD", "0.20")}
    with pytest.raises(ValueError):
        bonus_sheet(session, study, "excel")


def test_upgrading_keeps_old_sessions_and_makes_their_shared_codes_unique(db_url):
    from sqlalchemy import text

    from hype.db import make_engine
    from hype.migrate import upgrade

    engine = make_engine(db_url)
    upgrade(engine, "0001")
    now = "2026-11-01 10:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO studies (id, slug, name, mode, status, seed, settings, completion_code, qualification_fail_code, "
                          "export_salt, created_at) VALUES (1, 's', 'old', 'hype-infinity', 'published', 1, '{}', 'SHARED', 'FAIL', 'x', :t)"),
                     {"t": now})
        conn.execute(text("INSERT INTO models (id, study_id, name, position) VALUES (1, 1, 'm', 0)"))
        for k in (1, 2, 3):
            conn.execute(text("INSERT INTO participants (id, study_id, platform, worker_id, platform_ids, created_at) "
                              "VALUES (:k, 1, 'plain', :w, '{}', :t)"), {"k": k, "w": f"w{k}", "t": now})
            conn.execute(text("INSERT INTO assignments (id, participant_id, study_id, model_id, token, stage, draw_key, completion_code, "
                              "created_at) VALUES (:k, :k, 1, 1, :tok, 'completed', 1, :code, :t)"),
                         {"k": k, "tok": f"token{k}", "code": "SHARED" if k < 3 else None, "t": now})
    upgrade(engine)
    with engine.connect() as conn:
        codes = dict(conn.execute(text("SELECT id, completion_code FROM assignments ORDER BY id")).all())
    assert codes == {1: "SHARED-1", 2: "SHARED-2", 3: None}
    engine.dispose()
