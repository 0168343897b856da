"""Scoring commands: the leaderboard from stored judgments or a CSV, and study planning."""

from __future__ import annotations

from pathlib import Path

import click

from hype.cli.base import Context, fail, pass_ctx

# hype.scoring.METHODS, spelled out so `hype --help` need not import scipy (a test keeps them equal).
SCORING_METHODS = ("percentile", "BCa", "expanded", "studentized", "betabinomial-t", "kg-t")
# hype.scoring.DEFAULT_METHODS, spelled out for the same reason (a test keeps them equal).
DEFAULT_SCORING_METHODS = {"hype-infinity": "kg-t", "hype-time": "studentized"}


@click.command("score")
@click.argument("study", required=False)
@click.option("--from-csv", "csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Score per-participant summaries (id, model, error rates or counts) instead of a stored study.")
@click.option("--n-fake", type=int, help="(--from-csv) Fake images per participant when the CSV has no n_fake column [default: 100].")
@click.option("--n-real", type=int, help="(--from-csv) Real images per participant when the CSV has no n_real column [default: 100].")
@click.option("--resamples", type=int, help="Bootstrap resamples over evaluators [default: the study's setting; 10000 for --from-csv].")
@click.option("--method", type=click.Choice(SCORING_METHODS, case_sensitive=False), help="Bootstrap interval [default: the one whose measured coverage was 93-97% with balanced misses: kg-t for HYPE-∞ (studentized, its bound toward 50% no nearer than Korn-Graubard's), studentized for HYPE-time; the paper used percentile; betabinomial-t (HYPE-∞ only) trusts a beta shape of evaluators' error rates].")
@click.option("--seed", type=int, help="Bootstrap seed [default: the study seed; 0 for --from-csv].")
@click.option("--measured/--requested", default=None,
              help="(STUDY, HYPE-time) Score the measured on-screen exposures / the requested ones [default: the study's setting].")
@click.option("--time-score", type=click.Choice(["posterior", "mode"]),
              help="(STUDY, HYPE-time) Posterior 75% threshold per evaluator / the paper's block mode [default: posterior for adaptive (QUEST+) studies, mode otherwise].")
@click.option("--include-incomplete", is_flag=True, help="(STUDY) Also score evaluators who have not completed their task.")
@click.option("--min-catch-accuracy", type=click.FloatRange(0, 1),
              help="(STUDY) Leave out evaluators right on fewer catch trials than this share; 0 keeps everyone [default: the study's catch.min_accuracy].")
@click.option("--no-store", is_flag=True, help="(STUDY) Do not store this run as a score record.")
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard and tests as JSON.")
@pass_ctx
def score_cmd(ctx: Context, study: str | None, csv_path: Path | None, n_fake: int | None, n_real: int | None,
              resamples: int | None, method: str | None, seed: int | None, measured: bool | None,
              time_score: str | None, include_incomplete: bool, min_catch_accuracy: float | None, no_store: bool,
              as_json: bool) -> None:
    """HYPE leaderboard with bootstrap CIs, separability tests and ranking stability.

    `hype score STUDY` scores a stored study (id, slug or name) from its task judgments and stores the
    result; `hype score --from-csv FILE` scores per-participant summaries run elsewhere."""
    if (study is None) == (csv_path is None):
        fail("give exactly one of STUDY (a stored study's id, slug or name) or --from-csv FILE")
    if csv_path is not None:
        study_only = [name for name, used in (("--measured/--requested", measured is not None),
                                               ("--include-incomplete", include_incomplete), ("--no-store", no_store),
                                               ("--time-score", time_score is not None),
                                               ("--min-catch-accuracy", min_catch_accuracy is not None)) if used]
        if study_only:
            fail(f"{', '.join(study_only)} appl{'ies' if len(study_only) == 1 else 'y'} to a stored STUDY, not to --from-csv")
        _score_csv(csv_path, n_fake, n_real, resamples, method, seed, as_json)
        return
    if n_fake is not None or n_real is not None:
        fail("--n-fake/--n-real describe a --from-csv file; a stored study knows its own trials")
    _score_stored(ctx, study, resamples=resamples, method=method, seed=seed, measured=measured, time_score=time_score,
                  include_incomplete=include_incomplete, min_catch_accuracy=min_catch_accuracy, store=not no_store,
                  as_json=as_json)


def _score_csv(csv_path: Path, n_fake: int | None, n_real: int | None, resamples: int | None, method: str | None,
               seed: int | None, as_json: bool) -> None:
    import json

    from hype.scoring import leaderboard
    from hype.summaries import SummaryError, read_summaries

    try:
        counts = read_summaries(csv_path, n_fake=100 if n_fake is None else n_fake, n_real=100 if n_real is None else n_real)
        board = leaderboard(counts, n_resamples=10_000 if resamples is None else resamples,
                            method=method or DEFAULT_SCORING_METHODS["hype-infinity"], seed=0 if seed is None else seed)
    except (SummaryError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(board.to_dict(), indent=2))
        return
    _echo_leaderboard(board)


def _score_stored(ctx: Context, ref: str, *, resamples: int | None, method: str | None, seed: int | None,
                  measured: bool | None, time_score: str | None, include_incomplete: bool,
                  min_catch_accuracy: float | None, store: bool, as_json: bool) -> None:
    import json

    from hype import studies
    from hype.study_scoring import score_study, store_score

    with ctx.session() as session:
        try:
            s = studies.find_study(session, ref)
            score = score_study(session, s, method=method, n_resamples=resamples, seed=seed,
                                include_incomplete=include_incomplete, on_measured=measured, time_score=time_score,
                                min_catch_accuracy=min_catch_accuracy)
        except ValueError as exc:  # StudyError, ScoringError, SettingsError
            fail(str(exc))
        record_id = store_score(session, s, score).id if store else None
    if as_json:
        click.echo(json.dumps({"score_record_id": record_id, **score.to_dict()}, indent=2))
        return
    _echo_study_score(score)
    click.echo(f"stored as score record {record_id}" if store else "not stored (--no-store)")


def _num(value: float | None, scale: float = 1.0, spec: str = ".1f") -> str:
    import math

    return "-" if value is None or not math.isfinite(value) else format(scale * value, spec)


def _echo_leaderboard(board) -> None:
    """The leaderboard table, the separability test and ranking stability (both input kinds)."""
    infinity = board.mode == "hype-infinity"
    scale = 100.0 if infinity else 1.0
    ci = f"{100 * board.confidence_level:g}% CI"
    if infinity:
        click.echo(f"{'#':>2}  {'model':<24} {'HYPE-inf %':>10}  {ci:<13} {'fakes err':>9} {'reals err':>9}"
                   f" {'d-prime':>7} {ci:<11} {'c':>6} {ci:<13} {'n':>4}  group")
    else:
        click.echo(f"{'#':>2}  {'model':<24} {'HYPE-time ms':>12}  {ci:<13} {'n':>4}  group")
    for r in board.rows:
        interval = f"{_num(r.ci_low, scale)}-{_num(r.ci_high, scale)}" + ("*" if r.interval_method else "")
        line = f"{r.rank:>2}  {r.model:<24} "
        if infinity:
            line += (f"{_num(r.estimate, scale):>10}  {interval:<13} {_num(r.fakes_error, scale):>9}"
                     f" {_num(r.reals_error, scale):>9} {_sdt_columns(r.sdt)}")
        else:
            line += f"{_num(r.estimate, scale):>12}  {interval:<13}"
        click.echo(f"{line} {r.n_evaluators:>4}  {r.letters}")
    click.echo(f"CI: {_interval_note(board)}")
    for r in board.rows:
        if r.interval_method:
            click.echo(f"* {r.model}: {r.interval_method}")
    if infinity:
        click.echo("d-prime: how well evaluators tell this model's fakes from reals (0 = not at all; lower = more"
                   " realistic); c > 0: evaluators lean to answering 'real'. Means over evaluators, fakes = signal,"
                   " log-linear correction.")
    _echo_separability(board.separability, "points" if infinity else "ms", scale)
    _echo_ranking(board.ranking)


def _interval_note(board) -> str:
    from hype.coverage import coverage_note

    n = [r.n_evaluators for r in board.rows if r.n_evaluators]
    typical = sorted(n)[len(n) // 2] if n else None
    note = coverage_note(board.method, board.mode, typical, board.confidence_level)
    return note + (" (two-level resampling: coverage not measured)" if board.two_level else "")


def _sdt_columns(sdt) -> str:
    if sdt is None:
        return f"{'-':>7} {'':<11} {'-':>6} {'':<13}"
    d_ci = f"{_num(sdt.d_prime_ci.low, spec='.2f')}-{_num(sdt.d_prime_ci.high, spec='.2f')}"
    c_ci = f"{_num(sdt.criterion_ci.low, spec='.2f')}..{_num(sdt.criterion_ci.high, spec='.2f')}"
    return f"{_num(sdt.d_prime, spec='.2f'):>7} {d_ci:<11} {_num(sdt.criterion, spec='+.2f'):>6} {c_ci:<13}"


def _echo_separability(sep, unit: str, scale: float) -> None:
    if sep is None:
        click.echo("separability: not tested (needs two models with at least two scored evaluators each)")
        return
    name = {"student-t": "unpaired t-test", "welch-t": "Welch t-test", "anova+tukey": "one-way ANOVA"}.get(sep.test, sep.test)
    stat = "F" if sep.test == "anova+tukey" else "t"
    verdict = "models differ" if sep.p_value < sep.alpha else "no significant difference"
    click.echo(f"separability ({name}): {stat} = {_num(sep.statistic, spec='.3f')}, p = {_num(sep.p_value, spec='.4g')}"
               f" -> {verdict} at alpha {sep.alpha:g}")
    if sep.test == "anova+tukey":
        click.echo("  Tukey HSD:")
    level = f"{100 * (1 - sep.alpha):g}% CI"
    indent = "    " if sep.test == "anova+tukey" else "  "
    for p in sep.pairwise:
        click.echo(f"{indent}{p.model_a} - {p.model_b}: {_num(p.difference, scale)} {unit} ({level} {_num(p.ci_low, scale)}"
                   f" to {_num(p.ci_high, scale)}), p = {_num(p.p_value, spec='.4g')}{' *' if p.significant else ''}")
    groups = ", ".join(f"{m} {letters}" for m, letters in sep.letters.items())
    click.echo(f"  groups (models sharing a letter are not separable): {groups}")


def _echo_ranking(ranking) -> None:
    if ranking is None:
        click.echo("ranking stability: needs at least two scored models")
        return
    held = ", ".join(f"{m} {100 * ranking.p_at_rank[m]:.1f}%" for m in ranking.ranking)
    click.echo(f"ranking stability: the point ranking recurs in {100 * ranking.p_same_ranking:.1f}% of resamples;"
               f" each model holds its rank in: {held}")


def _echo_study_score(score) -> None:
    s, t = score.settings, score.totals
    exposure = f", {s.exposure} exposure" if s.exposure else ""
    click.echo(f"study {score.study_name!r} ({s.mode}): {s.method} bootstrap, {s.n_resamples} resamples, seed {s.seed}{exposure}"
               f"{', incomplete evaluators included' if s.include_incomplete else ''}")
    if s.time_score:
        from hype.study_scoring import TIME_SCORE_NAMES

        click.echo(f"HYPE-time score: {TIME_SCORE_NAMES[s.time_score]}")
    if s.min_catch_accuracy is not None:
        click.echo(f"catch trials: never scored; evaluators right on fewer than {100 * s.min_catch_accuracy:.0f}% of "
                   "them are left out")
    _echo_leaderboard(score.leaderboard)
    if score.unscored_models:
        click.echo(f"not scored (no evaluators yet): {', '.join(score.unscored_models)}")
    click.echo(f"evaluators: {t.scored_evaluators} scored; left out: {t.excluded_evaluators} excluded,"
               f" {t.failed_qualification} failed qualification, {t.failed_catch} failed catch trials,"
               f" {t.incomplete_evaluators} incomplete,"
               f" {t.no_trials_left} with no trial left")
    flagged = "flagged" if s.exclude_flagged_trials else "flagged (kept: exclude_flagged_trials is off)"
    missing = f", {t.missing_exposure_trials} without {s.exposure} exposure" if s.exposure else ""
    click.echo(f"trials: {t.scored_trials} scored; left out: {t.flagged_trials} {flagged}{missing},"
               f" {t.trials_of_left_out_evaluators} of left-out evaluators")
    _echo_metrics(score)


def _echo_metrics(score) -> None:
    if not score.metrics_by_encoder:
        return
    click.echo("automated metrics (newest run per model and encoder, same images; [95% bootstrap interval]):")
    scored = [r.model for r in score.leaderboard.rows]
    for encoder, by_model in score.metrics_by_encoder.items():
        shas = sorted({v.get("weights_sha256") or "?" for v in by_model.values()})
        click.echo(f"  encoder {encoder}, weights sha256 {', '.join(shas)}")
        first = next(iter(by_model.values()))
        fd_name = first.get("fd_name") or "FD"
        cmmd = any(v.get("cmmd") is not None for v in by_model.values())
        click.echo(f"    {'model':<24} {fd_name:>26} {'KID':>8} {'F_8':>6} {'F_1/8':>6} {'prec':>6} {'recall':>6} {'dens':>6} {'cover':>6}"
                   + (f" {'CMMD':>24}" if cmmd else ""))
        for model in scored + sorted(m for m in by_model if m not in scored):
            v = by_model.get(model)
            if v is None:
                continue
            ci = v.get("ci") or {}

            def with_ci(key: str, spec: str) -> str:
                lo_hi = ci.get(key)
                value = _num(v.get(key), spec=spec)
                if not lo_hi or lo_hi[0] is None:
                    return value
                return f"{value} [{_num(lo_hi[0], spec=spec)}, {_num(lo_hi[1], spec=spec)}]"

            click.echo(
                f"    {model:<24} {with_ci('fid', '.2f'):>26} {_num(v.get('kid_mean'), spec='.4f'):>8}"
                f" {_num(v.get('f_8'), spec='.3f'):>6} {_num(v.get('f_1_8'), spec='.3f'):>6} {_num(v.get('precision'), spec='.3f'):>6}"
                f" {_num(v.get('recall'), spec='.3f'):>6} {_num(v.get('density'), spec='.3f'):>6} {_num(v.get('coverage'), spec='.3f'):>6}"
                + (f" {with_ci('cmmd', '.4f'):>24}" if cmmd else "")
            )


@click.command("plan")
@click.argument("study", required=False)
@click.option("--mode", type=click.Choice(["hype-infinity", "hype-time"]),
              help="Without STUDY: the mode to plan [default: hype-infinity]. A STUDY plans its own mode.")
@click.option("--evaluators", default="10,20,30,60,120", show_default=True, help="Comma-separated evaluator counts.")
@click.option("--trials", type=int, help="Trials per evaluator (HYPE-infinity) or per block (HYPE-time) [default: the study's, else the protocol's].")
@click.option("--target", type=float, help="Wanted CI half-width (points for HYPE-infinity, ms for HYPE-time): print the evaluators and cost to reach it [default: a STUDY's stopping.target_halfwidth].")
@click.option("--simulations", default=200, show_default=True, help="Simulated studies per size.")
@click.option("--seed", default=0, show_default=True)
@pass_ctx
def plan_cmd(ctx: Context, study: str | None, mode: str | None, evaluators: str, trials: int | None, target: float | None,
             simulations: int, seed: int) -> None:
    """Expected 95% CI half-width and cost per number of evaluators, by simulation, to buy only what is needed.

    With STUDY (id, slug or name) the plan uses that study's mode, trials and pay, and, for every model
    with enough evaluators already, a population fitted to their scores."""
    from hype.planning import describe_population
    from hype.protocol import StudySettings
    from hype.simulate import Population

    try:
        sizes = [int(v) for v in evaluators.split(",") if v.strip()]
    except ValueError:
        fail(f"--evaluators is a comma-separated list of integers, not {evaluators!r}")
    if not sizes or min(sizes) < 2:
        fail("--evaluators needs counts of at least 2")
    if study is None:
        settings = StudySettings(mode=mode or "hype-infinity")
        plans = [("all models", Population(), "hype's default population (no study given)", None)]
    else:
        if mode is not None:
            fail("--mode applies without a STUDY; a study plans its own mode")
        settings, plans = _study_plans(ctx, study)
        if target is None and settings.stopping.target_halfwidth:
            target = settings.stopping.target_halfwidth
    unit, scale = ("points", 100.0) if settings.mode == "hype-infinity" else ("ms", 1.0)
    for model, population, source, current in plans:
        _echo_plan(settings, model, population, source, current, sizes, trials, target, simulations, seed, unit, scale,
                   describe_population)
    if study is not None:
        _echo_stopping(ctx, study, settings, unit)


def _echo_stopping(ctx: Context, ref: str, settings, unit: str) -> None:
    """The study's stopping rule and, per model, what the dashboard shows: its half-width now, whether
    collection stopped (when, by which rule) and the simulated forecast of evaluators and cost."""
    from hype import studies
    from hype.stopping_state import certainty

    stop = settings.stopping
    if not (stop.target_halfwidth or stop.until_models_separate):
        click.echo(f"stopping: no target certainty set; every model gets {settings.evaluators_per_model} evaluators")
        return
    goal = [f"half-width {stop.target_halfwidth:g} {unit}"] if stop.target_halfwidth else []
    goal += ["clear of every other model"] if stop.until_models_separate else []
    click.echo(f"== stopping rule: {' or '.join(goal)}, from {stop.min_evaluators} evaluators, at most "
               f"{settings.evaluators_per_model} (hype.stopping; coverage in experiments/stopping.md)")
    with ctx.session() as session:
        s = studies.find_study(session, ref)
        for c in certainty(session, s):
            now = "no interval yet" if c.halfwidth is None else f"half-width {c.halfwidth:.2f} {unit} ({100 * c.level:g}%)"
            line = f"  {c.model}: {c.n_evaluators} evaluators, {now}; {c.status}"
            if c.forecast:
                f = c.forecast
                line += (f"; forecast {f['more_median']} more evaluators (10-90%: {f['more_low']}-{f['more_high']}),"
                         f" about ${f['cost_usd']:.2f} ({f['n_simulations']} simulated continuations, population {f['population']})")
            click.echo(line)


def _study_plans(ctx: Context, ref: str):
    """Per model: (name, population, where it came from, (n, half-width) now or None)."""
    import math

    from hype import studies
    from hype.planning import MIN_EVALUATORS_TO_FIT, fit_population
    from hype.scoring import ScoringError
    from hype.simulate import Population
    from hype.study_scoring import score_study

    with ctx.session() as session:
        try:
            s = studies.find_study(session, ref)
        except ValueError as exc:
            fail(str(exc))
        settings = studies.study_settings(s)
        models = [m.name for m in s.models]
        try:
            # the study's own score (QUEST+ studies: the posterior threshold), the one the plan simulates
            score = score_study(session, s, n_resamples=1000, include_incomplete=False)
        except (ScoringError, ValueError):
            score = None
    plans = []
    board = score.leaderboard if score else None
    names = sorted(set(models) | ({r.model for r in board.rows} if board else set()))
    for model in names or ["all models"]:
        row = next((r for r in board.rows if r.model == model), None) if board else None
        population, source, current = Population(), "hype's default population", None
        if row is not None and row.n_evaluators:
            current = (row.n_evaluators, (row.ci_high - row.ci_low) / 2 if row.n_evaluators >= 2 else math.nan)
            fitted = fit_population(settings.mode, board.evaluator_scores.get(model, []))
            if fitted is not None:
                population, source = fitted, f"fitted to this study's {row.n_evaluators} scored evaluators of {model}"
            else:
                source += f" (fewer than {MIN_EVALUATORS_TO_FIT} scored evaluators of {model} to fit one)"
        else:
            source += " (no scored evaluators yet)"
        plans.append((model, population, source, current))
    return settings, plans


def _echo_plan(settings, model, population, source, current, sizes, trials, target, simulations, seed, unit, scale,
               describe_population) -> None:
    from dataclasses import replace

    from hype.planning import cost_per_evaluator, evaluators_for_halfwidth
    from hype.simulate import plan_ci_halfwidth

    if trials is not None:
        if settings.mode == "hype-infinity":
            settings = replace(settings, infinity=replace(settings.infinity, n_fake=trials // 2, n_real=trials - trials // 2))
        else:
            settings = replace(settings, time=replace(settings.time, trials_per_block=trials))
    per_block = settings.time.trials_per_block if settings.mode == "hype-time" else None
    n_trials = per_block if per_block else sum(settings.task_counts())
    adaptive = bool(per_block) and settings.time.adaptive  # simulate the procedure the study runs
    rows = plan_ci_halfwidth(settings.mode, sizes, n_trials, population=population, n_sim=simulations, seed=seed,
                             n_blocks=settings.time.n_blocks if per_block else None, adaptive=adaptive)
    task_trials, cost = cost_per_evaluator(settings, population)
    click.echo(f"== {model} ({settings.mode})")
    click.echo(f"assumed population: {describe_population(settings.mode, population)}")
    click.echo(f"  from: {source}")
    procedure = ("QUEST+ exposures and the posterior-threshold score" if adaptive
                 else "the paper's staircase and block-mode score")
    how = (f"{settings.time.n_blocks} blocks x {settings.time.trials_per_block} trials, {procedure}"
           if per_block else f"{task_trials} images, half fake")
    click.echo(f"per evaluator: {how}; pay ${settings.pay.base_usd:.2f} + ${settings.pay.bonus_per_correct_usd:.2f} per right"
               f" answer = ${cost:.2f} expected; {simulations} simulated studies per size")
    if current is not None:
        click.echo(f"now: {current[0]} scored evaluators, 95% CI half-width {_num(current[1], scale, '.2f')} {unit}")
    click.echo(f"{'evaluators':>10}  {'CI half-width (' + unit + ')':>24}  {'10%-90% of studies':>20}  {'cost (USD)':>10}")
    for r in rows:
        click.echo(f"{r.n_evaluators:>10}  {scale * r.mean_halfwidth:>24.2f}  {scale * r.q10_halfwidth:>9.2f}-{scale * r.q90_halfwidth:<9.2f}"
                   f"  {r.n_evaluators * cost:>10.2f}")
    if target is not None:
        need = evaluators_for_halfwidth(rows, target / scale)
        if need is None:
            click.echo(f"target half-width {target:g} {unit}: not reached within {max(sizes)} evaluators; add larger sizes to --evaluators")
        else:
            have = current[0] if current else 0
            more = max(0, need - have)
            click.echo(f"target half-width {target:g} {unit}: about {need} evaluators; {more} more to recruit, about ${more * cost:.2f}")


commands = [score_cmd, plan_cmd]
