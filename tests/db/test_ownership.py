"""Study ownership from the command line (issue 12, defect 5): studies made by `hype create-study` or
`hype import-results` belong to a researcher (by --owner, or the only one there is) and so show in
their dashboard; `hype transfer` moves a study to another researcher."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from hype.accounts import create_researcher
from hype.cli import main
from hype.models import Study

pytestmark = pytest.mark.db

PASSWORD = "correct horse battery"


def cli(config, *args: str):
    return CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args])


def researcher(session, email: str):
    made = create_researcher(session, email, PASSWORD)
    session.commit()
    return made


def dashboard_names(app, email: str) -> str:
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token}).status_code == 302
    return client.get("/studies").get_data(as_text=True)


def study_named(session, name: str) -> Study:
    session.rollback()
    return session.scalar(select(Study).where(Study.name == name))


def test_create_study_without_owner_belongs_to_the_only_researcher(session, config, app):
    alice = researcher(session, "alice@example.org")
    result = cli(config, "create-study", "--name", "Faces run 1", "--mode", "hype-infinity")
    assert result.exit_code == 0, result.output
    assert "owned by alice@example.org" in result.output
    assert study_named(session, "Faces run 1").owner_id == alice.id
    assert "Faces run 1" in dashboard_names(app, "alice@example.org")


def test_several_researchers_need_owner_and_transfer_moves_a_study(session, config, app):
    alice = researcher(session, "alice@example.org")
    bob = researcher(session, "bob@example.org")
    ambiguous = cli(config, "create-study", "--name", "Which one", "--mode", "hype-time")
    assert ambiguous.exit_code == 1 and "--owner" in ambiguous.output
    assert study_named(session, "Which one") is None
    made = cli(config, "create-study", "--name", "Bob's", "--mode", "hype-time", "--owner", "BOB@example.org")
    assert made.exit_code == 0, made.output
    study = study_named(session, "Bob's")
    assert study.owner_id == bob.id

    moved = cli(config, "transfer", str(study.id), "alice@example.org")
    assert moved.exit_code == 0 and "now belongs to alice@example.org (was bob@example.org)" in moved.output
    assert study_named(session, "Bob's").owner_id == alice.id
    assert "Bob&#39;s" in dashboard_names(app, "alice@example.org")
    assert "Bob&#39;s" not in dashboard_names(app, "bob@example.org")

    unknown = cli(config, "transfer", str(study.id), "carol@example.org")
    assert unknown.exit_code == 1 and "no researcher 'carol@example.org'" in unknown.output
    assert cli(config, "create-study", "--name", "x", "--mode", "hype-time", "--owner", "carol@example.org").exit_code == 1


def test_without_any_researcher_the_study_is_made_and_the_command_says_how_to_own_it(session, config):
    result = cli(config, "create-study", "--name", "Early", "--mode", "hype-infinity")
    assert result.exit_code == 0, result.output
    assert "hype transfer" in result.output
    assert study_named(session, "Early").owner_id is None
    made = cli(config, "create-researcher", "alice@example.org", "--password", PASSWORD)
    assert made.exit_code == 0 and "1 study has no owner" in made.output and "hype transfer STUDY alice@example.org" in made.output


def test_import_results_takes_an_owner_and_defaults_to_the_only_researcher(session, config, make_study, tmp_path, app):
    source = make_study()
    exported = cli(config, "export", str(source.id), "--output", str(tmp_path / "export"))
    assert exported.exit_code == 0, exported.output
    alice = researcher(session, "alice@example.org")
    first = cli(config, "import-results", str(tmp_path / "export"), "--name", "Imported A")
    assert first.exit_code == 0, first.output
    assert study_named(session, "Imported A").owner_id == alice.id
    assert "Imported A" in dashboard_names(app, "alice@example.org")

    bob = researcher(session, "bob@example.org")
    second = cli(config, "import-results", str(tmp_path / "export"), "--name", "Imported B", "--owner", "bob@example.org")
    assert second.exit_code == 0, second.output
    assert study_named(session, "Imported B").owner_id == bob.id
    ambiguous = cli(config, "import-results", str(tmp_path / "export"), "--name", "Imported C")
    assert ambiguous.exit_code == 1 and "--owner" in ambiguous.output
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Study).where(Study.name == "Imported C")) == 0
