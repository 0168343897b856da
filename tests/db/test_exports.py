"""`hype export` / `hype import-results`: a study's results out and back in, scoring exactly the same.

Studies are filled through the real worker service (hype.sessions), as browsers would: entry,
instructions, browser check, qualification, task, with seeded answers so the evaluators differ, some
trials flagged (focus lost, exposure far off), one evaluator failing qualification, one excluded, one
exclusion revoked and one evaluator who stops half-way.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from hype.cli import main
from hype.exports import (
    TABLES,
    ExportBundle,
    ExportError,
    _new_evaluator_ids,
    export_tables,
    export_zip_bytes,
    import_results,
    pseudonym,
    read_export,
    write_export,
)
from hype.models import Assignment, Exclusion, Image, Judgment, Participant, Study, Trial, utcnow
from hype.sessions import (
    Answer,
    BrowserCheck,
    current_trial,
    enter,
    finish_instructions,
    identity_from_params,
    record_answer,
    record_browser_check,
    serve_trial,
)
from hype.studies import study_settings
from hype.study_scoring import score_study

MODES = ("hype-infinity", "hype-time")
N_EVALUATORS = 14  # > 9, so evaluator ids of 1 and 2 digits sort differently as strings and as numbers


# --------------------------------------------------------------------------------------------------
# Filling a study through the worker service


def _identity(n: int):
    if n % 3 == 0:
        return identity_from_params({"workerId": f"W{n:04d}", "assignmentId": f"A{n:04d}", "hitId": "HIT1",
                                     "turkSubmitTo": "https://www.mturk.com"}, None)
    if n % 3 == 1:
        return identity_from_params({"PROLIFIC_PID": f"P{n:04d}", "STUDY_ID": "S1", "SESSION_ID": f"SS{n:04d}"}, None)
    return identity_from_params({}, f"anon-{n:04d}")


def run_evaluator(session, study, n: int, rng: np.random.Generator, *, fail_qualification: bool = False,
                  stop_after: int | None = None, identity=None) -> Assignment:
    """One worker's whole session through hype.sessions; returns their assignment."""
    a = enter(session, study, identity or _identity(n), user_agent=f"TestBrowser/{n}").assignment
    finish_instructions(a)
    record_browser_check(session, a, BrowserCheck(16.7, 1200, 900))
    settings = study_settings(study)
    skill = rng.uniform(0.45, 0.95)  # per evaluator, so task scores differ
    k = 0
    while (trial := current_trial(session, a)) is not None:
        if stop_after is not None and k >= stop_after:
            break
        requested = serve_trial(session, a, settings, trial)
        if trial.phase == "qualification":
            judged = (not trial.is_fake) if fail_qualification else trial.is_fake
        else:
            judged = trial.is_fake if rng.random() < skill else not trial.is_fake
        r = rng.random()
        focus_lost = r < 0.06
        off = 0.06 <= r < 0.12  # exposure far off: flagged when timed
        measured = None
        if requested is not None:
            measured = float(requested + (90.0 if off else rng.uniform(-6, 6)))
        record_answer(session, a, Answer(
            trial_token=trial.image_token, judged_fake=judged, idempotency_key=f"k{n:04d}x{k:06d}",
            measured_ms=measured, mask_measured_ms=(33.3,) * 4 if requested is not None else (),
            refresh_interval_ms=16.7, reaction_ms=float(rng.uniform(250, 1800)), focus_lost=focus_lost,
            client_timestamps={"onset": float(rng.uniform(0, 1e5)), "offset": float(rng.uniform(0, 1e5))},
        ))
        k += 1
    session.flush()
    return a


def fill_study(session, study, seed: int = 11) -> dict[str, Assignment]:
    """N_EVALUATORS sessions: most complete; one fails qualification, one stops early; one is
    excluded; another's exclusion is revoked."""
    rng = np.random.default_rng(seed)
    out = {}
    for n in range(N_EVALUATORS):
        kind = {3: "failed", 7: "incomplete"}.get(n, "ok")
        out[f"e{n}"] = run_evaluator(session, study, n, rng, fail_qualification=kind == "failed",
                                     stop_after=10 if kind == "incomplete" else None)
    assert out["e3"].stage == "failed" and out["e3"].qualification_passed is False
    assert out["e7"].stage == "task"
    session.add(Exclusion(assignment_id=out["e5"].id, reason="answered every image 'fake'", rule="constant-answers"))
    session.add(Exclusion(assignment_id=out["e9"].id, reason="by hand, then undone", rule=None, revoked_at=utcnow()))
    session.commit()
    return out


@pytest.fixture
def filled(session, make_study):
    def factory(mode: str = "hype-infinity", seed: int = 11) -> Study:
        study = make_study(mode)
        fill_study(session, study, seed)
        return study

    return factory


def _board(session, study, **kw) -> dict:
    score = score_study(session, study, **kw)
    d = score.to_dict()
    d.pop("study")
    return {"dict": d, "distributions": {m: r.bootstrap_distribution for m, r in score.leaderboard.results.items()}}


def _assert_same_scores(a: dict, b: dict) -> None:
    assert a["dict"] == b["dict"]
    assert set(a["distributions"]) == set(b["distributions"])
    for m in a["distributions"]:
        np.testing.assert_array_equal(a["distributions"][m], b["distributions"][m])


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------------
# Pseudonyms and raw ids


def test_pseudonyms_stable_within_a_study_different_across_studies(session, make_study):
    one, two = make_study("hype-infinity"), make_study("hype-infinity")
    rng = np.random.default_rng(0)
    same = identity_from_params({"PROLIFIC_PID": "PERSON1", "STUDY_ID": "S", "SESSION_ID": "X1"}, None)
    run_evaluator(session, one, 0, rng, identity=same)
    run_evaluator(session, two, 0, rng, identity=same)
    session.commit()
    first, again = export_tables(session, one), export_tables(session, one)
    other = export_tables(session, two)
    p1, p1b, p2 = (b.tables["participants"][0]["participant"] for b in (first, again, other))
    assert p1 == p1b == pseudonym(one.export_salt, "prolific", "PERSON1")
    assert p2 == pseudonym(two.export_salt, "prolific", "PERSON1") and p2 != p1
    assert len(p1) == 16 and int(p1, 16) >= 0
    assert "export_salt" not in json.dumps(first.definition) and one.export_salt not in json.dumps(first.definition)


def test_raw_ids_only_on_request(session, filled, tmp_path):
    study = filled()
    workers = [p.worker_id for p in session.scalars(select(Participant).where(Participant.study_id == study.id))]
    plain = write_export(export_tables(session, study), tmp_path / "plain", "csv")
    blob = b"".join(p.read_bytes() for p in plain) + export_zip_bytes(export_tables(session, study), "json")
    for w in workers:
        assert w.encode() not in blob
    assert b"SS0001" not in blob and b"TestBrowser" not in blob  # platform ids, user agents
    header = _csv_rows(tmp_path / "plain" / "participants.csv")[0].keys()
    assert "worker_id" not in header and "platform_ids" not in header and "user_agent" not in header

    write_export(export_tables(session, study, raw_ids=True), tmp_path / "raw", "csv")
    rows = _csv_rows(tmp_path / "raw" / "participants.csv")
    assert sorted(r["worker_id"] for r in rows) == sorted(workers)
    prolific = next(r for r in rows if r["platform"] == "prolific")
    assert json.loads(prolific["platform_ids"])["SESSION_ID"].startswith("SS")
    assert all(r["user_agent"].startswith("TestBrowser/") for r in rows)
    assert json.loads((tmp_path / "raw" / "study.json").read_text())["raw_ids"] is True


# --------------------------------------------------------------------------------------------------
# Content


@pytest.mark.parametrize("mode", MODES)
def test_every_trial_and_judgment_field_is_exported(session, filled, tmp_path, mode):
    study = filled(mode)
    bundle = export_tables(session, study)
    trials = bundle.tables["trials"]
    n_trials = session.scalar(select(func.count()).select_from(Trial).join(Assignment, Trial.assignment_id == Assignment.id).where(Assignment.study_id == study.id))
    assert len(trials) == n_trials
    assert set(trials[0]) == {c.name for c in TABLES["trials"]}
    by_key = {(t["evaluator"], t["position"]): t for t in trials}
    rows = session.execute(select(Trial, Judgment, Image).join(Image, Trial.image_id == Image.id)
                           .join(Assignment, Trial.assignment_id == Assignment.id)
                           .outerjoin(Judgment, Judgment.trial_id == Trial.id).where(Assignment.study_id == study.id)).all()
    n_answered = n_flagged = 0
    for trial, judgment, image in rows:
        t = by_key[(trial.assignment_id, trial.position)]
        assert (t["phase"], t["block"], t["image"], t["is_fake"], t["trial_requested_ms"]) == (
            trial.phase, trial.block, image.pixel_sha256, trial.is_fake, trial.requested_ms)
        if judgment is None:
            assert t["judged_fake"] is None and t["received_at"] is None
            continue
        n_answered += 1
        n_flagged += judgment.flagged
        for col in ("judged_fake", "correct", "requested_ms", "measured_ms", "mask_measured_ms", "refresh_interval_ms",
                    "reaction_ms", "client_timestamps", "focus_lost", "flagged", "flag_reasons"):
            assert t[col] == getattr(judgment, col), col
        assert t["received_at"].endswith("+00:00")
    assert n_answered < len(rows)  # the evaluator who stopped half-way
    assert n_flagged > 0
    counts = bundle.definition["counts"]
    assert counts["judgments"] == n_answered and counts["flagged_judgments"] == n_flagged
    if mode == "hype-time":
        assert any(t["measured_ms"] is not None and t["mask_measured_ms"] == [33.3] * 4 for t in trials)
        assert {s["block"] for s in bundle.tables["staircases"]} == {0, 1}
        assert all(s["state"]["intensities"] is not None for s in bundle.tables["staircases"])
    else:
        assert bundle.tables["staircases"] == []

    d = bundle.definition
    assert d["study"]["mode"] == mode and d["study"]["seed"] == study.seed and d["study"]["settings"] == study.settings
    assert [m["name"] for m in d["models"]] == ["alpha", "beta"]
    assert d["format"] == "hype-export" and d["format_version"] == 1 and d["hype_version"]
    assert set(d["tables"]) == set(TABLES) and d["tables"]["trials"]["rows"] == len(trials)
    # Never file paths, file hashes, source names or the per-session image tokens.
    blob = b"".join(p.read_bytes() for p in write_export(bundle, tmp_path / "x", "csv"))
    tokens = session.scalars(select(Trial.image_token).join(Assignment).where(Assignment.study_id == study.id)).all()
    assert not any(tok.encode() in blob for tok in tokens[:200])
    files = session.scalars(select(Image.file_sha256).where(Image.study_id == study.id, Image.pool != "mask")).all()
    assert not any(f.encode() in blob for f in files[:50])
    assert b"img0000.png" not in blob and b"token" not in blob.lower()


def test_exclusions_exported_with_revocations(session, filled):
    study = filled()
    ex = export_tables(session, study).tables["exclusions"]
    assert len(ex) == 2
    active = [e for e in ex if e["revoked_at"] is None]
    revoked = [e for e in ex if e["revoked_at"] is not None]
    assert len(active) == 1 and active[0]["rule"] == "constant-answers"
    assert len(revoked) == 1 and revoked[0]["rule"] is None


# --------------------------------------------------------------------------------------------------
# Round trips of the files


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_files_round_trip_exactly(session, filled, tmp_path, fmt):
    study = filled("hype-time")
    for raw in (False, True):
        bundle = export_tables(session, study, raw_ids=raw)
        out = tmp_path / f"{fmt}-{raw}"
        written = write_export(bundle, out, fmt)
        assert read_export(written[0] if fmt == "json" else out) == bundle
        zipped = tmp_path / f"{fmt}-{raw}.zip"
        zipped.write_bytes(export_zip_bytes(bundle, fmt))
        assert read_export(zipped) == bundle
    # floats survive bit for bit, None stays None
    back = read_export(out if fmt == "csv" else written[0])
    floats = [t["measured_ms"] for t in back.tables["trials"] if t["measured_ms"] is not None]
    assert floats and all(isinstance(v, float) for v in floats)
    assert any(t["trial_requested_ms"] is None for t in back.tables["trials"])  # qualification trials


def test_write_export_layouts_and_overwrite(session, filled, tmp_path):
    bundle = export_tables(session, filled())
    csv_files = write_export(bundle, tmp_path / "c", "csv")
    assert sorted(p.name for p in csv_files) == sorted(["study.json"] + [f"{t}.csv" for t in TABLES])
    assert [p.name for p in write_export(bundle, tmp_path / "doc.json", "json")] == ["doc.json"]
    assert [p.name for p in write_export(bundle, tmp_path / "d", "json")] == ["hype-export.json"]
    with pytest.raises(ExportError, match="would overwrite"):
        write_export(bundle, tmp_path / "c", "csv")
    write_export(bundle, tmp_path / "c", "csv", overwrite=True)
    with zipfile.ZipFile(io.BytesIO(export_zip_bytes(bundle, "csv"))) as zf:
        names = zf.namelist()
    assert all(n.startswith(f"{bundle.base_name()}/") for n in names) and len(names) == 1 + len(TABLES)


def test_parquet(session, filled, tmp_path):
    bundle = export_tables(session, filled("hype-time"))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ExportError, match=r"pip install -e '\.\[parquet\]'"):
            write_export(bundle, tmp_path / "p", "parquet")
        with pytest.raises(ExportError, match=r"pip install -e '\.\[parquet\]'"):
            export_zip_bytes(bundle, "parquet")
        assert not (tmp_path / "p").exists()
        return
    write_export(bundle, tmp_path / "p", "parquet")
    assert read_export(tmp_path / "p") == bundle


# --------------------------------------------------------------------------------------------------
# export -> import-results -> the same scores


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("mode", MODES)
def test_import_reproduces_scores_exactly(session, filled, tmp_path, mode, fmt):
    study = filled(mode)
    original = _board(session, study)
    written = write_export(export_tables(session, study), tmp_path / "out", fmt)
    imported = import_results(session, written[0] if fmt == "json" else tmp_path / "out")
    session.commit()
    assert imported.id != study.id and imported.status == "closed" and imported.name == f"{study.name} (imported)"
    assert (imported.mode, imported.seed, imported.settings) == (study.mode, study.seed, study.settings)
    again = _board(session, imported)
    _assert_same_scores(original, again)
    board = original["dict"]["leaderboard"]
    assert len(board["rows"]) == 2 and all(r["n_evaluators"] >= 2 for r in board["rows"])
    assert board["separability"] is not None and board["ranking_stability"] is not None
    totals = original["dict"]["totals"]
    assert totals["failed_qualification"] == 1 and totals["excluded_evaluators"] == 1
    assert totals["incomplete_evaluators"] == 1 and totals["flagged_trials"] > 0
    if mode == "hype-time":
        _assert_same_scores(_board(session, study, on_measured=True), _board(session, imported, on_measured=True))
    _assert_same_scores(_board(session, study, include_incomplete=True, method="BCa", n_resamples=500),
                        _board(session, imported, include_incomplete=True, method="BCa", n_resamples=500))


def test_reexport_of_an_import_matches_the_original(session, filled, tmp_path):
    study = filled("hype-time")
    first = export_tables(session, study)
    write_export(first, tmp_path / "a", "csv")
    imported = import_results(session, tmp_path / "a", name="copy")
    session.commit()
    second = export_tables(session, imported)

    ids = {}
    for p1, p2 in zip(first.tables["participants"], second.tables["participants"]):
        ids[p1["evaluator"]] = p2["evaluator"]
        assert p2["platform"] == "import"
        for k in p1:
            if k not in ("evaluator", "participant", "platform"):
                assert p1[k] == p2[k], k
    # same order by number and by string
    old = list(ids)
    assert sorted(old) == sorted(old, key=lambda i: ids[i])
    assert sorted(old, key=str) == sorted(old, key=lambda i: str(ids[i]))
    for table in ("trials", "exclusions", "staircases"):
        assert len(first.tables[table]) == len(second.tables[table])
        for r1, r2 in zip(first.tables[table], second.tables[table]):
            assert ids[r1["evaluator"]] == r2["evaluator"]
            assert {k: v for k, v in r1.items() if k != "evaluator"} == {k: v for k, v in r2.items() if k != "evaluator"}
    assert first.tables["images"] == second.tables["images"]
    imgs = session.scalars(select(Image).where(Image.study_id == imported.id)).all()
    assert all(i.source_name == f"imported:{i.pixel_sha256}" and i.file_sha256 == i.pixel_sha256 for i in imgs)
    c1, c2 = dict(first.definition["counts"]), dict(second.definition["counts"])
    assert c1 == c2


def test_exclusions_survive_import(session, filled, tmp_path):
    study = filled()
    write_export(export_tables(session, study), tmp_path / "e", "csv")
    imported = import_results(session, tmp_path / "e")
    session.commit()
    rows = session.scalars(select(Exclusion).join(Assignment).where(Assignment.study_id == imported.id)).all()
    assert len(rows) == 2
    assert sorted(r.revoked_at is None for r in rows) == [False, True]
    assert score_study(session, imported).totals.excluded_evaluators == 1


def test_import_into_a_fresh_database(session, filled, tmp_path):
    """Ids in the importing database differ from the exporting one; the scores must not."""
    from hype.db import make_engine, make_session_factory
    from hype.migrate import upgrade

    study = filled("hype-infinity")
    original = _board(session, study)
    out = tmp_path / "export.zip"
    out.write_bytes(export_zip_bytes(export_tables(session, study), "csv"))
    engine = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(engine)
    with make_session_factory(engine)() as other:
        for k in range(1, 40):  # an unrelated study, so ids are already in use there
            other.add(Study(slug=f"s{k}", name=f"s{k}", mode="hype-infinity", seed=k, settings={}, completion_code="X",
                            qualification_fail_code="Y", export_salt="z"))
        other.flush()
        imported = import_results(other, out)
        other.commit()
        _assert_same_scores(original, _board(other, imported))
    engine.dispose()


# --------------------------------------------------------------------------------------------------
# Bad files


def _rewrite_csv(path: Path, edit) -> None:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows = edit(rows)
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _set_cell(rows, line: int, column: str, value: str):
    rows[line - 1][rows[0].index(column)] = value
    return rows


def _bump_rows(folder: Path, table: str, delta: int) -> None:
    d = json.loads((folder / "study.json").read_text())
    d["tables"][table]["rows"] += delta
    (folder / "study.json").write_text(json.dumps(d))


@pytest.fixture
def exported(session, filled, tmp_path):
    study = filled()
    folder = tmp_path / "bad"
    write_export(export_tables(session, study), folder, "csv")
    return folder


CASES = {
    "bad boolean": (lambda f: _rewrite_csv(f / "trials.csv", lambda r: _set_cell(r, 5, "is_fake", "maybe")),
                    r"trials\.csv line 5, column 'is_fake': 'maybe' is not a boolean"),
    "bad number": (lambda f: _rewrite_csv(f / "trials.csv", lambda r: _set_cell(r, 7, "reaction_ms", "fast")),
                   r"trials\.csv line 7, column 'reaction_ms': 'fast' is not a number"),
    "missing column": (lambda f: _rewrite_csv(f / "trials.csv", lambda r: [row[:4] + row[5:] for row in r]),
                       r"trials\.csv: missing column\(s\) image"),
    "unknown evaluator": (lambda f: _rewrite_csv(f / "trials.csv", lambda r: _set_cell(r, 9, "evaluator", "999999")),
                          r"trials\.csv line 9, column 'evaluator': unknown evaluator 999999"),
    "duplicate trial": (lambda f: (_rewrite_csv(f / "trials.csv", lambda r: r[:4] + [r[3]] + r[4:]), _bump_rows(f, "trials", 1)),
                        r"trials\.csv line 5: duplicate trial: evaluator \d+ position \d+ is already at .*trials\.csv line 4"),
    "inconsistent correct": (lambda f: _rewrite_csv(f / "trials.csv", lambda r: _set_cell(
        r, 3, "correct", "false" if r[2][r[0].index("correct")] == "true" else "true")),
        r"trials\.csv line 3, column 'correct'"),
    "unknown image": (lambda f: _rewrite_csv(f / "trials.csv", lambda r: _set_cell(r, 2, "image", "ab" * 32)),
                      r"trials\.csv line 2, column 'image': unknown image"),
    "truncated": (lambda f: _rewrite_csv(f / "trials.csv", lambda r: r[:-3]),
                  r"trials\.csv: has \d+ rows but study\.json says \d+"),
    "unknown model": (lambda f: _rewrite_csv(f / "participants.csv", lambda r: _set_cell(r, 2, "model", "gamma")),
                      r"participants\.csv line 2, column 'model': 'gamma' is not one of the study's models"),
    "bad time": (lambda f: _rewrite_csv(f / "exclusions.csv", lambda r: _set_cell(r, 2, "created_at", "yesterday")),
                 r"exclusions\.csv line 2, column 'created_at': 'yesterday' is not an ISO 8601 time"),
    "bad json": (lambda f: (f / "study.json").write_text("{nope"), r"study\.json: not valid JSON"),
    "wrong version": (lambda f: (f / "study.json").write_text(json.dumps(
        {**json.loads((f / "study.json").read_text()), "format_version": 99})), r"format_version 99"),
    "bad settings": (lambda f: (f / "study.json").write_text(json.dumps(
        {**json.loads((f / "study.json").read_text()),
         "study": {**json.loads((f / "study.json").read_text())["study"], "settings": {"bogus": 1}}})),
        r"study\.settings: unknown setting\(s\): bogus"),
    "missing table": (lambda f: (f / "staircases.csv").unlink(), r"missing staircases\.csv"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_files_give_errors_naming_the_place(session, exported, case):
    damage, message = CASES[case]
    damage(exported)
    before = session.scalar(select(func.count()).select_from(Study))
    with pytest.raises(ExportError, match=message):
        import_results(session, exported)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Study)) == before


def test_bad_json_document_names_the_row(session, filled, tmp_path):
    bundle = export_tables(session, filled())
    doc = json.loads(write_export(bundle, tmp_path / "d.json", "json")[0].read_text())
    doc["tables"]["trials"][4]["judged_fake"] = "yes"
    (tmp_path / "d.json").write_text(json.dumps(doc))
    with pytest.raises(ExportError, match=r"d\.json trials\[4\], column 'judged_fake': 'yes' is not a boolean"):
        read_export(tmp_path / "d.json")
    with pytest.raises(ExportError, match="no such file"):
        read_export(tmp_path / "absent")
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(ExportError, match="not a HYPE export document"):
        read_export(tmp_path / "junk.json")


# --------------------------------------------------------------------------------------------------
# Evaluator ids


def test_new_evaluator_ids_keep_both_orders():
    old = [1, 2, 9, 10, 11, 20, 100, 7, 55]
    for floor in (1, 12, 57, 999, 10**6):
        new = _new_evaluator_ids(old, floor)
        assert min(new.values()) >= floor and len(set(new.values())) == len(old)
        assert sorted(old) == sorted(old, key=new.get)
        assert sorted(old, key=str) == sorted(old, key=lambda i: str(new[i]))
    # no room for prefixed ids in 32 bits: one same-width range, in string order
    new = _new_evaluator_ids([1, 10, 2, 2_000_000], 1_500_000_000)
    assert sorted([1, 10, 2, 2_000_000], key=str) == sorted(new, key=lambda i: str(new[i]))
    assert all(v < 2**31 for v in new.values())


# --------------------------------------------------------------------------------------------------
# CLI


def _cli(config, *args: str):
    return CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args])


def test_cli_export_import_score(session, filled, config, tmp_path):
    study = filled("hype-time")
    out = tmp_path / "cli"
    res = _cli(config, "export", str(study.id), "--format", "csv", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert f"exported study {study.id}" in res.output and "participants.csv" in res.output and "pseudonymised" in res.output
    res = _cli(config, "export", study.slug, "-o", str(out))
    assert res.exit_code != 0 and "would overwrite" in res.output
    res = _cli(config, "export", str(study.id), "--format", "json", "-o", str(tmp_path / "x.json"), "--raw-ids")
    assert res.exit_code == 0 and "raw worker ids" in res.output
    res = _cli(config, "export", str(study.id), "-o", str(tmp_path / "x.zip"))
    assert res.exit_code == 0, res.output

    res = _cli(config, "import-results", str(tmp_path / "x.zip"), "--name", "replica")
    assert res.exit_code == 0, res.output
    assert "'replica'" in res.output and "hype score" in res.output
    new_id = res.output.split("as study ")[1].split()[0]
    scores = []
    for ref in (str(study.id), new_id):
        res = _cli(config, "score", ref, "--json", "--no-store")
        assert res.exit_code == 0, res.output
        scores.append(json.loads(res.output))
    assert scores[0]["leaderboard"] == scores[1]["leaderboard"] and scores[0]["counts"] == scores[1]["counts"]

    res = _cli(config, "import-results", str(tmp_path / "x.json"))
    assert res.exit_code == 0, res.output
    (out / "trials.csv").write_text("evaluator\n1\n")
    res = _cli(config, "import-results", str(out))
    assert res.exit_code != 0 and "trials.csv: missing column(s)" in res.output
    res = _cli(config, "export", "no-such-study")
    assert res.exit_code != 0 and "no study" in res.output


def test_bundle_is_plain_data(session, filled):
    bundle = export_tables(session, filled())
    assert isinstance(bundle, ExportBundle)
    json.dumps(bundle.definition)
    json.dumps(bundle.tables)
