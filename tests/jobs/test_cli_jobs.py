"""`hype metrics` runs the metrics job in the command (and prints the table); `--enqueue` queues it
for `hype worker`; `hype jobs` lists a study's jobs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hype.cli import main
from hype.models import Job, MetricResult


@pytest.fixture
def cli(config, engine, monkeypatch, tiny_weights):
    monkeypatch.setenv("HYPE_INCEPTION_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("HYPE_METRICS", "kid,prd,prdc")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args])

    return invoke


def test_hype_metrics_runs_the_job_and_prints_every_model(cli, session, metrics_study, db_backend):
    if db_backend != "sqlite":
        pytest.skip("the job itself runs on both databases in test_metrics_job; this is the command's output")
    result = cli("metrics", str(metrics_study.id), "--device", "cpu", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("alpha") for line in lines) and any(line.startswith("beta") for line in lines)
    job = session.query(Job).one()
    assert job.state == "done" and job.kind == "metrics"
    assert session.query(MetricResult).count() == 2
    listing = cli("jobs", str(metrics_study.id))
    assert "Compute metrics" in listing.output and "done" in listing.output


def test_hype_metrics_enqueue_leaves_the_job_to_the_worker(cli, config, session, metrics_study, db_backend):
    if db_backend != "sqlite":
        pytest.skip("queueing does not depend on the database")
    from hype.jobs.queue import get_queue

    result = cli("metrics", str(metrics_study.id), "--enqueue")
    assert result.exit_code == 0 and "queued as job" in result.output, result.output
    assert session.query(Job).one().state == "queued"
    assert get_queue(config).pending_count() == 1
    again = cli("metrics", str(metrics_study.id))
    assert again.exit_code != 0 and "already waiting" in again.output
    assert session.query(MetricResult).count() == 0


def test_hype_report_enqueue_queues_the_report_job_and_the_worker_writes_the_file(cli, config, session, metrics_study,
                                                                                  db_backend, tmp_path):
    if db_backend != "sqlite":
        pytest.skip("queueing does not depend on the database")
    from hype.jobs.kinds import reports_dir
    from hype.jobs.queue import get_queue
    from hype.jobs.runner import run_job

    output = tmp_path / "not-written.html"
    result = cli("report", str(metrics_study.id), "--enqueue", "--resamples", "50", "-o", str(output))
    assert result.exit_code == 0 and "queued as job" in result.output, result.output
    job = session.query(Job).one()
    assert (job.kind, job.state, job.params.get("n_resamples")) == ("report", "queued", 50)
    assert get_queue(config).pending_count() == 1 and not output.exists()
    assert run_job(config, job.id) == "done"
    files = list(reports_dir(config).glob("hype-report-*.html"))
    assert len(files) == 1 and "<html" in files[0].read_text(encoding="utf-8").lower()


def test_hype_report_enqueue_names_an_unknown_study(cli, db_backend):
    if db_backend != "sqlite":
        pytest.skip("no database work")
    result = cli("report", "no-such-study", "--enqueue")
    assert result.exit_code != 0 and "no-such-study" in result.output and "Traceback" not in result.output
