"""The database schema as SQLAlchemy 2.x typed models. Alembic (hype/migrations) owns the real schema;
a test proves the two never drift apart."""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


# Study lifecycle and participant progress, as stored strings (readable in SQL, stable across versions).
STUDY_STATUSES = ("draft", "published", "closed")
POOLS = ("real", "fake", "mask", "catch")  # catch: degraded fakes hype makes (docs/protocol.md)
ASSIGNMENT_STAGES = ("consent", "instructions", "check", "qualification", "task", "completed", "failed", "abandoned")
ACTIVE_STAGES = ("instructions", "check", "qualification", "task")  # a worker is still in the session
FINISHED_STAGES = ("completed", "failed", "abandoned")  # nothing more can happen in it
PHASES = ("qualification", "task")


class Researcher(Base):
    __tablename__ = "researchers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # Signed-in cookies carry the epoch they were issued under; logout and a password reset move it
    # on, so every cookie issued before stops working on the server side.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    studies: Mapped[list["Study"]] = relationship(back_populates="owner")


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Public, unguessable handle used in worker links, so study ids are not enumerable.
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    seed: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    completion_code: Mapped[str] = mapped_column(String(64))
    qualification_fail_code: Mapped[str] = mapped_column(String(64))
    prolific_completion_url: Mapped[Optional[str]] = mapped_column(String(500))
    # Salt for pseudonymising worker ids in exports; per study so ids cannot be linked across studies.
    export_salt: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("researchers.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True))

    owner: Mapped[Optional[Researcher]] = relationship(back_populates="studies")
    models: Mapped[list["GeneratorModel"]] = relationship(
        back_populates="study", order_by="GeneratorModel.position", cascade="all, delete-orphan"
    )
    images: Mapped[list["Image"]] = relationship(back_populates="study", cascade="all, delete-orphan")
    participants: Mapped[list["Participant"]] = relationship(back_populates="study", cascade="all, delete-orphan")


class GeneratorModel(Base):
    """A generative model under evaluation; its images form one fake pool."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("study_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[Optional[str]] = mapped_column(Text)

    study: Mapped[Study] = relationship(back_populates="models")
    images: Mapped[list["Image"]] = relationship(back_populates="model")


class Image(Base):
    """A pool member, stored content-addressed and re-encoded without metadata.

    `pixel_sha256` identifies the picture itself (duplicate detection across encodings);
    `file_sha256` names the stored file. `source_name` is for the researcher's provenance only and is
    never served to workers.
    """

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("study_id", "pixel_sha256"),
        Index("ix_images_study_pool_model", "study_id", "pool", "model_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    pool: Mapped[str] = mapped_column(String(10))
    model_id: Mapped[Optional[int]] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    pixel_sha256: Mapped[str] = mapped_column(String(64))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    source_name: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    study: Mapped[Study] = relationship(back_populates="images")
    model: Mapped[Optional[GeneratorModel]] = relationship(back_populates="images")


class Participant(Base):
    """A crowd identity within one study; unique per study, which enforces between-subjects."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("study_id", "platform", "worker_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(20))  # plain | mturk | prolific
    worker_id: Mapped[str] = mapped_column(String(200))
    platform_ids: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    user_agent: Mapped[Optional[str]] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    study: Mapped[Study] = relationship(back_populates="participants")
    assignment: Mapped[Optional["Assignment"]] = relationship(back_populates="participant", uselist=False)


class Assignment(Base):
    """One participant in one study-model task (between-subjects: exactly one per participant)."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), unique=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    # Session token: 256-bit random, the only credential a worker's browser holds.
    token: Mapped[str] = mapped_column(String(128), unique=True)
    stage: Mapped[str] = mapped_column(String(20), default="consent")
    draw_key: Mapped[int] = mapped_column(Integer)  # with the study seed, reproduces this plan
    # Issued when the session ends; unique per session so one worker's code is worthless to another.
    completion_code: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    qualification_real_correct: Mapped[Optional[int]] = mapped_column(Integer)
    qualification_fake_correct: Mapped[Optional[int]] = mapped_column(Integer)
    qualification_passed: Mapped[Optional[bool]] = mapped_column(Boolean)
    refresh_interval_ms: Mapped[Optional[float]] = mapped_column(Float)
    window_width: Mapped[Optional[int]] = mapped_column(Integer)
    window_height: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True))
    # The worker's last step (entry, instructions, check, answer) on the server's clock, to within
    # hype.recruitment.TOUCH_EVERY: what decides that an unfinished session is abandoned.
    last_active_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    participant: Mapped[Participant] = relationship(back_populates="assignment")
    study: Mapped[Study] = relationship()
    model: Mapped[GeneratorModel] = relationship()
    trials: Mapped[list["Trial"]] = relationship(
        back_populates="assignment", order_by="Trial.position", cascade="all, delete-orphan"
    )
    exclusions: Mapped[list["Exclusion"]] = relationship(back_populates="assignment", cascade="all, delete-orphan")


class Trial(Base):
    """One planned presentation. `image_token` is the opaque per-session handle the browser sees."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("assignment_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(String(20))
    block: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer)  # order within the assignment, over all phases
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    is_fake: Mapped[bool] = mapped_column(Boolean)
    # A catch trial: shown like any task trial, never scored (docs/protocol.md, Catch trials).
    is_catch: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    image_token: Mapped[str] = mapped_column(String(64), unique=True)
    requested_ms: Mapped[Optional[float]] = mapped_column(Float)  # set by the server when the trial is served
    # Deliveries of the image to the browser; a timed trial delivered more than once is flagged.
    presentations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    assignment: Mapped[Assignment] = relationship(back_populates="trials")
    image: Mapped[Image] = relationship()
    judgment: Mapped[Optional["Judgment"]] = relationship(back_populates="trial", uselist=False)


class Judgment(Base):
    """A recorded answer with everything measured about its presentation."""

    __tablename__ = "judgments"

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), unique=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    judged_fake: Mapped[bool] = mapped_column(Boolean)
    correct: Mapped[bool] = mapped_column(Boolean)
    requested_ms: Mapped[Optional[float]] = mapped_column(Float)
    measured_ms: Mapped[Optional[float]] = mapped_column(Float)
    mask_measured_ms: Mapped[Optional[list[Any]]] = mapped_column(JSON)
    refresh_interval_ms: Mapped[Optional[float]] = mapped_column(Float)
    reaction_ms: Mapped[Optional[float]] = mapped_column(Float)
    client_timestamps: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    focus_lost: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reasons: Mapped[Optional[str]] = mapped_column(String(200))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    trial: Mapped[Trial] = relationship(back_populates="judgment")


class StaircaseRecord(Base):
    """Serialised staircase state per assignment block, written after every answer."""

    __tablename__ = "staircase_states"
    __table_args__ = (UniqueConstraint("assignment_id", "block"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    block: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Exclusion(Base):
    """A researcher's (or a rule's) decision to leave an evaluator out of scoring; undoable."""

    __tablename__ = "exclusions"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    rule: Mapped[Optional[str]] = mapped_column(String(100))  # None = by hand
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True))

    assignment: Mapped[Assignment] = relationship(back_populates="exclusions")


class MetricResult(Base):
    """An automated metric for one model against the study's real pool, with the weights that made it."""

    __tablename__ = "metric_results"
    __table_args__ = (Index("ix_metric_results_study_model", "study_id", "model_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    weights_sha256: Mapped[str] = mapped_column(String(64))
    weights_source: Mapped[str] = mapped_column(String(500))
    device: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScoreRecord(Base):
    """A stored run of `hype score`: the leaderboard and tests exactly as computed then."""

    __tablename__ = "score_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


PLATFORM_DECISIONS = ("approved", "returned", "rejected", "flagged")
BONUS_STATUSES = ("pending", "sending", "paid", "failed")


class PlatformStudy(Base):
    """A study's listing on a crowd platform: the Prolific study or the MTurk HIT hype created for it."""

    __tablename__ = "platform_studies"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(20))  # prolific | mturk
    external_id: Mapped[str] = mapped_column(String(200))
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False)
    places: Mapped[int] = mapped_column(Integer)
    reward_cents: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(40), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True))


class PlatformSubmission(Base):
    """A platform's record of one worker's submission (Prolific submission / MTurk assignment), as
    last synced, with hype's decision about it and why."""

    __tablename__ = "platform_submissions"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))  # Prolific submission id / MTurk AssignmentId
    worker_id: Mapped[str] = mapped_column(String(200))
    assignment_id: Mapped[Optional[int]] = mapped_column(ForeignKey("assignments.id", ondelete="SET NULL"), index=True)
    platform_status: Mapped[str] = mapped_column(String(40))
    code: Mapped[Optional[str]] = mapped_column(String(200))  # the completion code the worker submitted
    decision: Mapped[Optional[str]] = mapped_column(String(20))  # see PLATFORM_DECISIONS; None = not yet
    note: Mapped[Optional[str]] = mapped_column(String(500))
    synced_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class BonusPayment(Base):
    """One bonus to one worker, written before the platform is asked to pay it: a re-run finds the row
    and never pays again. `request_token` is the MTurk UniqueRequestToken (and a label on Prolific)."""

    __tablename__ = "bonus_payments"
    __table_args__ = (UniqueConstraint("platform", "assignment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(20))
    worker_id: Mapped[str] = mapped_column(String(200))
    submission_id: Mapped[str] = mapped_column(String(200))  # Prolific submission id / MTurk AssignmentId
    amount_cents: Mapped[int] = mapped_column(Integer)
    request_token: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # see BONUS_STATUSES
    batch_id: Mapped[Optional[str]] = mapped_column(String(200))  # Prolific bulk bonus payment id
    error: Mapped[Optional[str]] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    paid_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True))

JOB_KINDS = ("metrics", "report", "import", "forecast")
JOB_STATES = ("queued", "running", "done", "failed")


class Job(Base):
    """A background job (hype.jobs): what was asked, how far it got, and how it ended.

    The queue (Huey) only carries the job's id; this row is what the dashboard and `hype jobs` read,
    so it lives in the study's database whatever queue storage runs the work. `heartbeat_at` is
    renewed while the job runs: a running job whose heartbeat stopped was killed with its worker
    (shown as interrupted, and it may be started again)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_study_kind", "study_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(500), default="")
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    result: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)


class EvaluatorScore(Base):
    """One completed session's score as hype.stopping looks at it, stored when the session completes so
    that a stopping look reads one row per evaluator instead of every answer of the model
    (hype.stopping_state). `basis` names the scoring settings it was computed under (mode, exposure,
    time score, flagged trials); a row of another basis is recomputed. Exclusions are not baked in:
    they are applied when the rows are read. `score` is None when every trial of the session is left
    out (flagged, or without the exposure being scored)."""

    __tablename__ = "evaluator_scores"

    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    basis: Mapped[str] = mapped_column(String(64))
    score: Mapped[Optional[float]] = mapped_column(Float, nullable=True)


class ModelStopping(Base):
    """A model's last look by the study's stopping rule (hype.stopping), kept so that assigning a
    worker reads one row per model instead of re-scoring the study.

    Refreshed (hype.stopping_state.refresh) when one of the model's sessions completes, an exclusion is
    made or revoked, and the study's settings change. `stopped_at`, `stopped_n` and `reason` record when
    and why collection for the model stopped, for the dashboard and the report; they are cleared if it
    reopens (an exclusion, a tighter target). `forecast` caches the dashboard's simulated forecast of
    evaluators still needed, for `forecast_n` evaluators."""

    __tablename__ = "model_stopping"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), unique=True)
    n_evaluators: Mapped[int] = mapped_column(Integer, default=0)
    estimate: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    halfwidth: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    confidence_level: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    stopped_n: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    stopped_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    refreshed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    forecast: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, nullable=True)
    forecast_n: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
