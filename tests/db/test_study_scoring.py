"""`score_study` / `hype score STUDY`: a stored study's task judgments -> the HYPE leaderboard.

Every expected number below is worked out by hand from the judgments the test stores, so these tests
check the DB shell's rules (which evaluators and trials count) as well as its wiring to hype.scoring.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from dataclasses import dataclass, field

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats
from sqlalchemy import func, select

from hype import studies
from hype.cli import SCORING_METHODS, main
from hype.models import (
    Assignment,
    Exclusion,
    GeneratorModel,
    Image,
    Judgment,
    MetricResult,
    Participant,
    ScoreRecord,
    Study,
    Trial,
    utcnow,
)
from hype.scoring import METHODS, InfinityCounts, leaderboard
from hype.study_scoring import ScoringError, score_study, store_score

R60 = 1000 / 60  # one display frame at 60 Hz, ms
R120 = 1000 / 120
JITTER = itertools.cycle([0.3, -0.2, 0.1, -0.4])  # measured-vs-frame noise, well under half a frame


# --------------------------------------------------------------------------------------------------
# Building studies row by row


@dataclass
class Builder:
    """Stores evaluators and their answers the way the worker app will: one Participant + Assignment
    per evaluator, one Trial + Judgment per answer."""

    session: object
    study: Study
    images: dict[str | None, int] = field(default_factory=dict)
    positions: dict[int, itertools.count] = field(default_factory=dict)

    def model(self, name: str) -> GeneratorModel:
        return studies.add_model(self.session, self.study, name)

    def _image(self, model: GeneratorModel | None) -> int:
        key = None if model is None else model.name
        if key not in self.images:
            img = Image(study_id=self.study.id, pool="real" if model is None else "fake",
                        model_id=None if model is None else model.id, pixel_sha256=secrets.token_hex(32),
                        file_sha256=secrets.token_hex(32), width=8, height=8, source_name=f"{key or 'real'}.png")
            self.session.add(img)
            self.session.flush()
            self.images[key] = img.id
        return self.images[key]

    def evaluator(self, model: GeneratorModel, *, stage: str = "completed", passed: bool | None = True,
                  refresh_ms: float | None = None, qualification: bool = True) -> Assignment:
        p = Participant(study_id=self.study.id, platform="plain", worker_id=secrets.token_hex(8))
        self.session.add(p)
        self.session.flush()
        a = Assignment(participant_id=p.id, study_id=self.study.id, model_id=model.id, token=secrets.token_hex(32),
                       stage=stage, draw_key=0, qualification_passed=passed, refresh_interval_ms=refresh_ms)
        self.session.add(a)
        self.session.flush()
        self.positions[a.id] = itertools.count()
        if qualification:  # every qualification answer wrong: would move every score if it counted
            for is_fake in (True, True, False, False):
                self.answer(a, model, is_fake=is_fake, judged_fake=not is_fake, phase="qualification")
        return a

    def answer(self, a: Assignment, model: GeneratorModel, *, is_fake: bool, judged_fake: bool, phase: str = "task",
               block: int = 0, requested_ms: float | None = None, measured_ms: float | None = None,
               refresh_ms: float | None = None, flagged: bool = False) -> Judgment:
        t = Trial(assignment_id=a.id, phase=phase, block=block, position=next(self.positions[a.id]),
                  image_id=self._image(model if is_fake else None), is_fake=is_fake,
                  image_token=secrets.token_hex(16), requested_ms=requested_ms)
        self.session.add(t)
        self.session.flush()
        j = Judgment(trial_id=t.id, assignment_id=a.id, idempotency_key=secrets.token_hex(16), judged_fake=judged_fake,
                     correct=judged_fake == is_fake, requested_ms=requested_ms, measured_ms=measured_ms,
                     refresh_interval_ms=refresh_ms, flagged=flagged, flag_reasons="exposure-off" if flagged else None)
        self.session.add(j)
        self.session.flush()
        return j

    def infinity_task(self, a: Assignment, model: GeneratorModel, fake_errors: int, real_errors: int,
                      n_fake: int = 4, n_real: int = 4) -> list[Judgment]:
        """n_fake fakes of which `fake_errors` judged real, n_real reals of which `real_errors` judged fake."""
        out = [self.answer(a, model, is_fake=True, judged_fake=i >= fake_errors) for i in range(n_fake)]
        out += [self.answer(a, model, is_fake=False, judged_fake=i < real_errors) for i in range(n_real)]
        return out

    def time_block(self, a: Assignment, model: GeneratorModel, block: int, requested: list[float], *,
                   frame_ms: float | None = None, refresh_on_judgment: bool = False, flagged: bool = False) -> None:
        """One staircase block: the requested exposures in order; measured = the whole frames shown
        (round(ms / frame), as the client does) plus sub-millisecond jitter."""
        for i, ms in enumerate(requested):
            measured = None if frame_ms is None else round(ms / frame_ms) * frame_ms + next(JITTER)
            self.answer(a, model, is_fake=bool(i % 2), judged_fake=bool(i % 3), block=block, requested_ms=ms,
                        measured_ms=measured, refresh_ms=frame_ms if refresh_on_judgment else None, flagged=flagged)


def _study(session, mode: str, settings: dict | None = None) -> Builder:
    s = studies.create_study(session, name=f"{mode}-{secrets.token_hex(3)}", mode=mode, seed=20240607, settings=settings)
    return Builder(session, s)


# HYPE-infinity: (fakes judged real, reals judged fake) out of 4 + 4 per evaluator.
GOOD = [(2, 1), (1, 0), (3, 2)]  # pooled: fakes 6/12, reals 3/12, overall 9/24
BAD = [(0, 0), (1, 1), (0, 1)]  # pooled: fakes 1/12, reals 2/12, overall 3/24


@dataclass
class InfinityStudy:
    b: Builder
    good: GeneratorModel
    bad: GeneratorModel
    good_evaluators: list[Assignment]
    bad_evaluators: list[Assignment]
    failed: Assignment


@pytest.fixture
def inf(session) -> InfinityStudy:
    b = _study(session, "hype-infinity")
    good, bad = b.model("good"), b.model("bad")
    good_ev, bad_ev = [], []
    for model, spec, out in ((good, GOOD, good_ev), (bad, BAD, bad_ev)):
        for fake_err, real_err in spec:
            a = b.evaluator(model)
            b.infinity_task(a, model, fake_err, real_err)
            out.append(a)
    # failed qualification, yet with task answers (all wrong): must never count
    failed = b.evaluator(bad, stage="failed", passed=False)
    b.infinity_task(failed, bad, 4, 4)
    session.commit()
    return InfinityStudy(b, good, bad, good_ev, bad_ev, failed)


def _rows(score) -> dict:
    return {r.model: r for r in score.leaderboard.rows}


# --------------------------------------------------------------------------------------------------
# HYPE-infinity


def test_infinity_pooled_error_fakes_and_reals_error(session, inf):
    score = score_study(session, inf.b.study, n_resamples=300)
    rows = _rows(score)
    assert [r.model for r in score.leaderboard.rows] == ["good", "bad"]
    assert rows["good"].estimate == pytest.approx(9 / 24)
    assert rows["good"].fakes_error == pytest.approx(6 / 12)
    assert rows["good"].reals_error == pytest.approx(3 / 12)
    assert rows["bad"].estimate == pytest.approx(3 / 24)
    assert rows["bad"].fakes_error == pytest.approx(1 / 12)
    assert rows["bad"].reals_error == pytest.approx(2 / 12)
    # qualification answers never count: 8 task trials per evaluator, not 12
    assert (rows["good"].n_evaluators, rows["good"].n_trials) == (3, 24)
    assert (rows["bad"].n_evaluators, rows["bad"].n_trials) == (3, 24)
    for r in rows.values():
        assert r.ci_low <= r.estimate <= r.ci_high
    # the paper's separability test on per-evaluator error rates
    sep = score.leaderboard.separability
    expected = stats.ttest_ind([(f + r) / 8 for f, r in BAD], [(f + r) / 8 for f, r in GOOD])
    assert sep.test == "student-t"
    assert sep.statistic == pytest.approx(expected.statistic)
    assert sep.p_value == pytest.approx(expected.pvalue)
    assert score.leaderboard.ranking.ranking == ("good", "bad")


def test_failed_qualification_is_left_out_and_counted(session, inf):
    score = score_study(session, inf.b.study, n_resamples=100)
    bad = score.counts["bad"]
    assert bad.failed_qualification == 1 and bad.scored_evaluators == 3
    assert bad.trials_of_left_out_evaluators == 8  # its task answers; qualification ones are not task trials
    assert score.counts["good"].left_out_evaluators == 0
    assert (score.n_included_evaluators, score.n_excluded_evaluators) == (6, 1)
    assert (score.n_included_trials, score.n_excluded_trials) == (48, 8)
    # the leaderboard row says the same, through hype.scoring's own exclusion counts
    assert (_rows(score)["bad"].n_excluded_evaluators, _rows(score)["bad"].n_excluded) == (1, 8)


def test_active_exclusion_drops_evaluator_and_revoking_brings_them_back(session, inf):
    worst = inf.good_evaluators[2]  # (3, 2) errors
    exclusion = Exclusion(assignment_id=worst.id, reason="straight-lined", rule=None)
    session.add(exclusion)
    session.commit()
    score = score_study(session, inf.b.study, n_resamples=100)
    good = _rows(score)["good"]
    assert good.estimate == pytest.approx(4 / 16)
    assert (good.fakes_error, good.reals_error) == (pytest.approx(3 / 8), pytest.approx(1 / 8))
    assert good.n_evaluators == 2
    assert score.counts["good"].excluded_evaluators == 1
    assert score.counts["good"].trials_of_left_out_evaluators == 8

    exclusion.revoked_at = utcnow()
    session.commit()
    score = score_study(session, inf.b.study, n_resamples=100)
    assert _rows(score)["good"].estimate == pytest.approx(9 / 24)
    assert score.counts["good"].excluded_evaluators == 0


def test_flagged_trials_are_left_out_and_counted_unless_the_study_keeps_them(session, inf):
    # flag bad's second evaluator's one fake error (a fake judged real)
    a = inf.bad_evaluators[1]
    j = session.scalar(select(Judgment).join(Trial).where(Judgment.assignment_id == a.id, Trial.phase == "task",
                                                          Trial.is_fake.is_(True), Judgment.judged_fake.is_(False)))
    j.flagged = True
    session.commit()
    score = score_study(session, inf.b.study, n_resamples=100)
    bad = _rows(score)["bad"]
    assert bad.estimate == pytest.approx(2 / 23)
    assert bad.fakes_error == pytest.approx(0 / 11)
    assert score.counts["bad"].flagged_trials == 1
    assert bad.n_excluded == score.counts["bad"].left_out_trials == 1 + 8

    study = inf.b.study
    study.settings = {**study.settings, "statistics": {**study.settings["statistics"], "exclude_flagged_trials": False}}
    session.commit()
    score = score_study(session, study, n_resamples=100)
    assert _rows(score)["bad"].estimate == pytest.approx(3 / 24)
    assert score.counts["bad"].flagged_trials == 0
    assert score.settings.exclude_flagged_trials is False


def test_incomplete_evaluators_left_out_unless_asked(session, inf):
    b = inf.b
    partial = b.evaluator(inf.good, stage="task")
    b.infinity_task(partial, inf.good, fake_errors=2, real_errors=0, n_fake=2, n_real=1)
    b.evaluator(inf.good, stage="abandoned")  # left at the instructions: no task answers at all
    session.commit()
    score = score_study(session, b.study, n_resamples=100)
    assert _rows(score)["good"].estimate == pytest.approx(9 / 24)
    assert score.counts["good"].incomplete_evaluators == 2
    assert score.counts["good"].trials_of_left_out_evaluators == 3

    score = score_study(session, b.study, n_resamples=100, include_incomplete=True)
    good = _rows(score)["good"]
    assert good.estimate == pytest.approx((9 + 2) / 27)
    assert good.fakes_error == pytest.approx(8 / 14)
    assert good.n_evaluators == 4
    # the abandoned one would count but has nothing to score
    assert score.counts["good"].no_trials_left == 1 and score.counts["good"].incomplete_evaluators == 0
    assert score.settings.include_incomplete is True


def test_bootstrap_is_seeded_from_the_study_and_reproducible(session, inf):
    study = inf.b.study
    one = score_study(session, study, n_resamples=300)
    two = score_study(session, study, n_resamples=300)
    assert one.settings.seed == study.seed == one.leaderboard.seed
    for m in ("good", "bad"):
        assert one.leaderboard.results[m].confidence_interval == two.leaderboard.results[m].confidence_interval
        np.testing.assert_array_equal(one.leaderboard.results[m].bootstrap_distribution,
                                      two.leaderboard.results[m].bootstrap_distribution)
    other = score_study(session, study, n_resamples=300, seed=study.seed + 1)
    assert not np.array_equal(one.leaderboard.results["good"].bootstrap_distribution,
                              other.leaderboard.results["good"].bootstrap_distribution)
    # exactly what hype.scoring gives for the same counts and the study seed
    ids = sorted(str(a.id) for a in inf.good_evaluators + inf.bad_evaluators)
    spec = {str(a.id): ("good", *GOOD[i]) for i, a in enumerate(inf.good_evaluators)}
    spec |= {str(a.id): ("bad", *BAD[i]) for i, a in enumerate(inf.bad_evaluators)}
    counts = InfinityCounts.from_counts(ids, [spec[e][0] for e in ids], [spec[e][1] for e in ids], 4,
                                        [spec[e][2] for e in ids], 4)
    direct = leaderboard(counts, n_resamples=300, seed=study.seed)
    for m in ("good", "bad"):
        assert direct.results[m].confidence_interval == one.leaderboard.results[m].confidence_interval


def test_settings_come_from_the_study_unless_overridden(session, inf):
    score = score_study(session, inf.b.study)
    assert (score.settings.n_resamples, score.settings.method, score.settings.confidence_level) == (10_000, "kg-t", 0.95)
    assert score.settings.exposure is None
    bca = score_study(session, inf.b.study, method="bca", n_resamples=200)
    assert bca.settings.method == bca.leaderboard.method == "BCa"
    with pytest.raises(ScoringError, match="method must be one of"):
        score_study(session, inf.b.study, method="jackknife")


def test_score_record_stores_the_payload(session, inf):
    score = score_study(session, inf.b.study, n_resamples=200)
    record = store_score(session, inf.b.study, score)
    session.commit()
    session.expire_all()
    stored = session.get(ScoreRecord, record.id)
    assert stored.study_id == inf.b.study.id
    assert stored.payload == json.loads(json.dumps(score.to_dict()))
    assert stored.payload["leaderboard"]["rows"][0]["model"] == "good"
    assert stored.payload["counts"]["bad"]["failed_qualification"] == 1


def test_latest_automated_metrics_sit_beside_the_human_scores(session, inf):
    values = lambda fid: {"fid": fid, "kid_mean": 0.01, "kid_std": 0.001, "precision": 0.7, "recall": 0.6,  # noqa: E731
                          "density": 0.9, "coverage": 0.8, "prd": {"precision": [1.0] * 1001, "recall": [0.5] * 1001,
                                                                    "f_8": 0.91, "f_1_8": 0.82}, "errors": {}}
    for fid in (50.0, 12.5):  # the newer run wins
        session.add(MetricResult(study_id=inf.b.study.id, model_id=inf.good.id, values=values(fid),
                                 weights_sha256="a" * 64, weights_source="test", device="cpu"))
        session.flush()
    session.commit()
    score = score_study(session, inf.b.study, n_resamples=100)
    m = score.metrics["good"]
    assert (m["fid"], m["f_8"], m["f_1_8"], m["recall"]) == (12.5, 0.91, 0.82, 0.6)
    assert "prd" not in m and "bad" not in score.metrics


def test_nothing_to_score_is_a_clear_error(session):
    b = _study(session, "hype-infinity")
    with pytest.raises(ScoringError, match="no models"):
        score_study(session, b.study)
    m = b.model("only")
    with pytest.raises(ScoringError, match="no completed evaluators"):
        score_study(session, b.study)
    a = b.evaluator(m, stage="task")
    b.infinity_task(a, m, 1, 1)
    session.commit()
    with pytest.raises(ScoringError, match=r"no completed evaluators to score \(1 incomplete\)"):
        score_study(session, b.study)
    assert _rows(score_study(session, b.study, include_incomplete=True, n_resamples=100))["only"].estimate == pytest.approx(2 / 8)


# --------------------------------------------------------------------------------------------------
# HYPE-time

# requested exposures per evaluator and block; block modes worked out by hand in the comments
SLOW = {
    "s1": [[500, 490, 480, 490, 480, 480], [500, 510, 500, 530, 500]],  # modes 480, 500 -> 490
    "s2": [[500, 530, 560, 560], [500, 490, 500, 490]],  # 560, tie 490/500 -> 495 -> 527.5
}
FAST = {
    "f1": [[500, 490, 480, 470, 460, 460, 460], [300, 300, 310]],  # 460, 300 -> 380
    "f2": [[200, 210, 200], [250, 250, 240]],  # 200, 250 -> 225
}


@pytest.fixture
def timed(session) -> Builder:
    b = _study(session, "hype-time")
    slow, fast = b.model("slow"), b.model("fast")
    for model, spec in ((slow, SLOW), (fast, FAST)):
        for name, blocks in spec.items():
            on_judgment = name == "f1"  # f1's frame is known only from its answers (120 Hz)
            frame = R120 if name == "f1" else R60
            a = b.evaluator(model, refresh_ms=None if on_judgment else frame)
            for block, requested in enumerate(blocks):
                b.time_block(a, model, block, requested, frame_ms=frame, refresh_on_judgment=on_judgment)
            if name == "f2":  # two flagged trials at 240 ms would make block 1's mode 240
                b.time_block(a, model, 1, [240, 240], frame_ms=frame, flagged=True)
    session.commit()
    return b


def test_time_scores_block_modes_of_requested_exposure(session, timed):
    score = score_study(session, timed.study, n_resamples=300)
    rows = _rows(score)
    assert score.settings.exposure == "requested"
    assert rows["slow"].estimate == pytest.approx((490 + 527.5) / 2)
    assert rows["fast"].estimate == pytest.approx((380 + 225) / 2)
    assert rows["slow"].fakes_error is None
    t = score.leaderboard.separability
    assert t.statistic == pytest.approx(stats.ttest_ind([380, 225], [490, 527.5]).statistic)
    assert score.counts["fast"].flagged_trials == 2
    assert rows["fast"].n_trials == 7 + 3 + 3 + 3


def test_time_flagged_trials_count_when_the_study_keeps_them(session, timed):
    study = timed.study
    study.settings = {**study.settings, "statistics": {**study.settings["statistics"], "exclude_flagged_trials": False}}
    session.commit()
    rows = _rows(score_study(session, study, n_resamples=100))
    assert rows["fast"].estimate == pytest.approx((380 + (200 + 240) / 2) / 2)


def test_time_scores_measured_exposure_binned_to_each_evaluators_frame(session, timed):
    # whole frames shown per block (round(ms / frame)); the block mode in frames, times the frame:
    s1 = (29 + 30) / 2 * R60  # [30,29,29,29,29,29] -> 29; [30,31,30,32,30] -> 30
    s2 = (34 + 29.5) / 2 * R60  # [30,32,34,34] -> 34; [30,29,30,29] -> tie 29.5
    f1 = (55 + 36) / 2 * R120  # 120 Hz: [60,59,58,56,55,55,55] -> 55; [36,36,37] -> 36
    f2 = (12 + 15) / 2 * R60  # [12,13,12] -> 12; [15,15,14] -> 15
    score = score_study(session, timed.study, n_resamples=100, on_measured=True)
    rows = _rows(score)
    assert score.settings.exposure == "measured"
    assert rows["slow"].estimate == pytest.approx((s1 + s2) / 2, abs=1e-5)
    assert rows["fast"].estimate == pytest.approx((f1 + f2) / 2, abs=1e-5)
    # the study setting asks for the same thing
    study = timed.study
    study.settings = {**study.settings, "statistics": {**study.settings["statistics"], "score_on_measured_exposure": True}}
    session.commit()
    by_setting = score_study(session, study, n_resamples=100)
    assert _rows(by_setting)["slow"].estimate == rows["slow"].estimate
    assert by_setting.settings.exposure == "measured"
    # ...and on_measured=False overrides it back to the paper's requested exposures
    assert _rows(score_study(session, study, n_resamples=100, on_measured=False))["slow"].estimate == pytest.approx(508.75)


def test_time_trials_without_a_measured_exposure_are_left_out_and_counted(session, timed):
    a = session.scalar(select(Assignment).join(GeneratorModel).where(GeneratorModel.name == "slow").order_by(Assignment.id))
    last = session.scalars(select(Judgment).join(Trial).where(Judgment.assignment_id == a.id, Trial.phase == "task",
                                                             Trial.block == 0).order_by(Trial.position)).all()
    for j in last[:1]:  # the 500 ms trial: its frame (30) is not block 0's mode either way
        j.measured_ms = None
    session.commit()
    score = score_study(session, timed.study, n_resamples=100, on_measured=True)
    assert score.counts["slow"].missing_exposure_trials == 1
    assert _rows(score)["slow"].n_trials == 6 + 5 + 4 + 4 - 1
    assert _rows(score_study(session, timed.study, n_resamples=100))["slow"].n_trials == 19


# --------------------------------------------------------------------------------------------------
# Command line


def _cli(config, *args: str):
    return CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args])


def _records(session, study) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(ScoreRecord).where(ScoreRecord.study_id == study.id))


def test_cli_prints_the_leaderboard_and_stores_a_record(session, config, inf):
    study = inf.b.study
    # slugs are token_urlsafe and may start with "-": "--" keeps click from reading one as an option
    res = _cli(config, "score", "--resamples", "200", "--", study.slug)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    good = next(line for line in lines if line.split()[1:2] == ["good"])
    assert good.split()[0] == "1" and good.split()[2] == "37.5"  # HYPE-inf %
    assert good.split()[4:6] == ["50.0", "25.0"] and good.split()[-2:] == ["3", "a"]  # fakes err, reals err, n
    assert "separability (unpaired t-test)" in res.output and "ranking stability" in res.output
    assert "1 failed qualification" in res.output and "48 scored" in res.output
    assert "stored as score record" in res.output
    assert _records(session, study) == 1

    res = _cli(config, "score", str(study.id), "--resamples", "200", "--no-store", "--json", "--method", "bca")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["score_record_id"] is None and payload["settings"]["method"] == "BCa"
    assert payload["leaderboard"]["rows"][0]["estimate"] == pytest.approx(9 / 24)
    assert _records(session, study) == 1


def test_cli_prints_time_scores_and_metrics(session, config, timed):
    model = session.scalar(select(GeneratorModel).where(GeneratorModel.study_id == timed.study.id, GeneratorModel.name == "slow"))
    session.add(MetricResult(study_id=timed.study.id, model_id=model.id, values={"fid": 33.25, "prd": {"f_8": 0.5, "f_1_8": 0.25}},
                             weights_sha256="b" * 64, weights_source="test", device="cpu"))
    session.commit()
    res = _cli(config, "score", timed.study.name, "--resamples", "200", "--measured", "--no-store")
    assert res.exit_code == 0, res.output
    assert "HYPE-time ms" in res.output and "measured exposure" in res.output
    assert "automated metrics" in res.output and "33.25" in res.output
    assert _records(session, timed.study) == 0


def test_cli_errors_clearly(session, config, inf, tmp_path):
    res = _cli(config, "score", "no-such-study")
    assert res.exit_code != 0 and "no study 'no-such-study'" in res.output
    res = _cli(config, "score")
    assert res.exit_code != 0 and "exactly one of STUDY" in res.output
    csv = tmp_path / "s.csv"
    csv.write_text("id,model,f_err_rt,r_err_rt\na,m,0.5,0.5\n")
    res = _cli(config, "score", "--from-csv", str(csv), "--", inf.b.study.slug)
    assert res.exit_code != 0 and "exactly one of STUDY" in res.output
    res = _cli(config, "score", "--from-csv", str(csv), "--no-store")
    assert res.exit_code != 0 and "--no-store applies to a stored STUDY" in res.output
    res = _cli(config, "score", "--n-fake", "50", str(inf.b.study.id))
    assert res.exit_code != 0 and "--from-csv" in res.output
    empty = _study(session, "hype-infinity")
    empty.model("m")
    session.commit()
    res = _cli(config, "score", "--", empty.study.slug)
    assert res.exit_code != 0 and "no completed evaluators" in res.output and "Traceback" not in res.output
    assert _records(session, empty.study) == 0


def test_cli_method_choices_match_the_scoring_module():
    from hype.cli.scoring import DEFAULT_SCORING_METHODS
    from hype.scoring import DEFAULT_METHODS

    assert tuple(SCORING_METHODS) == tuple(METHODS)
    assert DEFAULT_SCORING_METHODS == {m: DEFAULT_METHODS[m] for m in ("hype-infinity", "hype-time")}


def test_cli_plan_takes_a_study_and_states_its_assumptions(session, config, inf):
    """`hype plan STUDY` (was: "unexpected extra argument"): the study's own mode, trials and pay, per
    model the assumed population and where it came from, the current half-width, and the cost."""
    study = inf.b.study
    res = _cli(config, "plan", "--evaluators", "5,10", "--simulations", "5", "--target", "5", "--", study.slug)
    assert res.exit_code == 0, res.output
    out = res.output
    assert out.count("== ") == 2 and "== good (hype-infinity)" in out
    assert "assumed population: median evaluator right on" in out
    assert "fewer than 5 scored evaluators of good" in out  # 3 evaluators: too few to fit, said so
    assert "now: 3 scored evaluators" in out
    assert "pay $1.00 + $0.02 per right answer" in out and "cost (USD)" in out
    assert "target half-width 5 points" in out
    bad = _cli(config, "plan", "--mode", "hype-time", "--", study.slug)
    assert bad.exit_code != 0 and "a study plans its own mode" in bad.output


def test_cli_plan_uses_the_studys_target_certainty_and_forecasts_like_the_dashboard(session, config, inf):
    """`hype plan STUDY` without --target plans for the study's stopping.target_halfwidth (issue 15 part 2)
    and prints, per model, the stopping rule's half-width now, whether collection stopped and the
    simulated forecast of evaluators and cost still needed: the dashboard's Certainty card."""
    from hype.studies import update_settings

    study = inf.b.study
    update_settings(session, study, {"stopping": {"target_halfwidth": 4.0}})
    session.commit()
    res = _cli(config, "plan", "--evaluators", "5,10", "--simulations", "5", "--", study.slug)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "target half-width 4 points: " in out
    assert "== stopping rule: half-width 4 points, from 10 evaluators, at most 30" in out
    for model in ("good", "bad"):
        line = next(x for x in out.splitlines() if x.startswith(f"  {model}: "))
        assert re.search(rf"{model}: 3 evaluators, half-width [\d.]+ points \(96%\); collecting; forecast \d+ more "
                         r"evaluators \(10-90%: \d+-\d+\), about \$[\d.]+ \(400 simulated continuations, population hype's default", line), line


def test_cli_plan_of_a_quest_study_forecasts_quest_plus(session, config, make_study):
    """Was: the plan of a QUEST+ (`time.adaptive`) study simulated the paper's staircase and block mode."""
    quest = make_study("hype-time", settings={"qualification": {"enabled": False},
                                              "time": {"n_blocks": 2, "trials_per_block": 6, "adaptive": True}})
    res = _cli(config, "plan", "--evaluators", "5", "--simulations", "3", "--", quest.slug)
    assert res.exit_code == 0, res.output
    assert "2 blocks x 6 trials, QUEST+ exposures and the posterior-threshold score" in res.output
    classic = make_study("hype-time", settings={"qualification": {"enabled": False},
                                                "time": {"n_blocks": 2, "trials_per_block": 6}}, seed=8)
    res = _cli(config, "plan", "--evaluators", "5", "--simulations", "3", "--", classic.slug)
    assert res.exit_code == 0 and "the paper's staircase and block-mode score" in res.output
