"""Exporting a study's results, and importing such an export as a new study that scores the same.

An export is a study definition (`study.json`: name, mode, seed, settings, models, counts, stored
metric results, the column manifest) plus six tables:

- `participants`: one row per evaluator (assignment). Worker ids are pseudonymised as
  HMAC-SHA256(study's secret export salt, "platform:worker_id"), first 16 hex digits: stable within a
  study, unlinkable across studies, and the salt is never exported. Raw worker ids, platform ids and
  user agents only when the researcher asks (`raw_ids=True`).
- `trials`: one row per planned trial joined with its judgment (empty judgment columns = not
  answered), with every timing field. Images are named by their pixel SHA-256, never by a file path
  or the opaque per-session token a worker's browser saw.
- `images`: the real and fake pools (pixel SHA-256, pool, model, size), so the trials' images resolve.
- `exclusions`, `staircases`: evaluator exclusions (revoked ones keep their revocation time) and the
  HYPE-time staircase records (config and state, as JSON).

Formats: `csv` (a folder: study.json + one CSV per table; floats written with repr, so they read back
bit for bit; None is an empty cell; booleans are true/false; JSON values are compact JSON text;
times are ISO 8601 in UTC), `json` (one document: {"definition": study.json, "tables": {...}}),
`parquet` (a folder: study.json + one Parquet file per table; needs pyarrow). Any of them may be
zipped (`export_zip_bytes`, the dashboard's download).

`import_results` reads any of these (folder, file or zip) and creates a new, closed study with the
same mode, seed and settings, placeholder image rows keyed by pixel hash (no files), and every
evaluator, trial, judgment, exclusion, staircase and metric result, so `score_study` on it gives
exactly the leaderboard of the original.

Why imported evaluators get chosen ids: `score_study` names evaluators by their assignment id as a
string and the bootstrap resamples them in that (lexicographic) order, so the same seed reproduces
the same intervals only if the imported evaluators sort the same way. Each imported id is
int(prefix + original id) for one prefix chosen above every id in use, which keeps both the
lexicographic and the numeric order of the original ids.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import secrets
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from hype import __version__
from hype.models import (
    ASSIGNMENT_STAGES,
    PHASES,
    Assignment,
    Exclusion,
    GeneratorModel,
    Image,
    Judgment,
    MetricResult,
    Participant,
    StaircaseRecord,
    Study,
    Trial,
    utcnow,
)
from hype.protocol import MODES, SettingsError, StudySettings
from hype.quality import catch_accuracy
from hype.studies import StudyError, add_model, create_study, new_code, study_settings

__all__ = [
    "FORMATS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "TABLES",
    "ExportError",
    "ExportBundle",
    "pseudonym",
    "export_tables",
    "write_export",
    "export_zip_bytes",
    "read_export",
    "import_bundle",
    "import_results",
]

FORMATS = ("csv", "json", "parquet")
FORMAT_NAME = "hype-export"
FORMAT_VERSION = 1
PSEUDONYM_HEX = 16
JSON_DOCUMENT = "hype-export.json"
DEFINITION_FILE = "study.json"
IMPORT_PLATFORM = "import"
INT32_MAX = 2**31 - 1
# Room left between the sequence value this import reserves and its first id, for assignments that
# live sessions create in the instant before the sequence is moved past the imported ids (PostgreSQL).
_SEQUENCE_MARGIN = 1000


class ExportError(ValueError):
    """An export that cannot be written, or a file that cannot be read or imported, with the reason
    (naming the file, row and column where there is one)."""


# --------------------------------------------------------------------------------------------------
# Table schemas: one list drives the CSV / JSON / Parquet writers and readers alike.


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # int | float | bool | str | json | datetime
    required: bool  # a value must be present (not None)
    description: str
    raw: bool = False  # only in exports with raw ids; optional in the header
    added: bool = False  # added after format version 1 came out: a file may lack it (read as empty)


def _c(name: str, kind: str, required: bool, description: str, raw: bool = False, added: bool = False) -> Column:
    return Column(name, kind, required, description, raw, added)


TABLES: dict[str, tuple[Column, ...]] = {
    "participants": (
        _c("evaluator", "int", True, "evaluator id (the assignment id in the exporting database)"),
        _c("participant", "str", True, "pseudonymous worker id: HMAC-SHA256(per-study secret salt, 'platform:worker_id'), first 16 hex digits"),
        _c("platform", "str", True, "crowd platform: plain | mturk | prolific (import for re-imported studies)"),
        _c("model", "str", True, "the model whose task this evaluator did"),
        _c("stage", "str", True, "where the session ended or stands: " + " | ".join(ASSIGNMENT_STAGES)),
        _c("draw_key", "int", True, "with the study seed, reproduces this evaluator's image draw and order"),
        _c("qualification_real_correct", "int", False, "qualification real images judged correctly"),
        _c("qualification_fake_correct", "int", False, "qualification fake images judged correctly"),
        _c("qualification_passed", "bool", False, "qualification result (empty: not reached / no qualification)"),
        _c("refresh_interval_ms", "float", False, "display frame measured at the browser check, ms"),
        _c("window_width", "int", False, "browser window width at the check, CSS px"),
        _c("window_height", "int", False, "browser window height at the check, CSS px"),
        _c("created_at", "datetime", True, "session start (UTC)"),
        _c("completed_at", "datetime", False, "session end: task completed or qualification failed (UTC)"),
        _c("catch_correct", "int", False, "catch trials answered right (empty: the study has no catch trials)", added=True),
        _c("catch_answered", "int", False, "catch trials answered", added=True),
        _c("catch_accuracy", "float", False, "catch_correct / catch_answered: the share the catch rule judges", added=True),
        _c("worker_id", "str", False, "raw worker id (personal data; only with --raw-ids)", raw=True),
        _c("platform_ids", "json", False, "raw platform ids, e.g. MTurk assignmentId / Prolific SESSION_ID (only with --raw-ids)", raw=True),
        _c("user_agent", "str", False, "browser user agent (only with --raw-ids)", raw=True),
    ),
    "trials": (
        _c("evaluator", "int", True, "evaluator id (participants.evaluator)"),
        _c("position", "int", True, "order within the evaluator's session, over all phases, from 0"),
        _c("phase", "str", True, "qualification | task (only task trials that are not catch trials are scored)"),
        _c("block", "int", True, "HYPE-time staircase block (0 for qualification and HYPE-infinity)"),
        _c("image", "str", True, "the image's pixel SHA-256 (images.image)"),
        _c("is_fake", "bool", True, "truth: the image is generated"),
        _c("trial_requested_ms", "float", False, "exposure the server fixed when the trial was served (HYPE-time task)"),
        _c("judged_fake", "bool", False, "the answer: true = judged fake (empty: not answered)"),
        _c("correct", "bool", False, "judged_fake == is_fake"),
        _c("requested_ms", "float", False, "requested exposure recorded with the answer, ms"),
        _c("measured_ms", "float", False, "measured on-screen exposure reported by the client, ms"),
        _c("mask_measured_ms", "json", False, "measured on-screen duration of each backward mask, ms (JSON list)"),
        _c("refresh_interval_ms", "float", False, "display frame reported with the answer, ms"),
        _c("reaction_ms", "float", False, "reaction time from image onset, ms"),
        _c("client_timestamps", "json", False, "the client's performance.now() marks (JSON object)"),
        _c("focus_lost", "bool", False, "the page lost focus or visibility during the trial"),
        _c("flagged", "bool", False, "presentation not trusted (scoring leaves it out by default)"),
        _c("flag_reasons", "str", False, "comma-separated: no-timing, exposure-off, mask-missing, mask-off, focus-lost"),
        _c("received_at", "datetime", False, "when the server recorded the answer (UTC)"),
        _c("catch", "bool", False, "a catch trial: a degraded fake or a clean real, never scored (empty: false)", added=True),
    ),
    "images": (
        _c("image", "str", True, "pixel SHA-256 of the image"),
        _c("pool", "str", True, "real | fake | catch (a degraded fake hype made for catch trials)"),
        _c("model", "str", False, "the model a fake image belongs to"),
        _c("width", "int", True, "pixels"),
        _c("height", "int", True, "pixels"),
    ),
    "exclusions": (
        _c("evaluator", "int", True, "evaluator id (participants.evaluator)"),
        _c("reason", "str", True, "why the evaluator is left out"),
        _c("rule", "str", False, "the rule that excluded them (empty: by hand)"),
        _c("created_at", "datetime", True, "when (UTC)"),
        _c("revoked_at", "datetime", False, "when the exclusion was undone (UTC); empty = in force"),
    ),
    "staircases": (
        _c("evaluator", "int", True, "evaluator id (participants.evaluator)"),
        _c("block", "int", True, "HYPE-time block"),
        _c("config", "json", True, "the staircase rule (JSON object)"),
        _c("state", "json", True, "its state: intensities presented, responses, reversals (JSON object)"),
        _c("updated_at", "datetime", False, "last update (UTC)"),
    ),
}
TABLE_ORDER = tuple(TABLES)


def _columns(table: str, raw_ids: bool) -> tuple[Column, ...]:
    return tuple(c for c in TABLES[table] if raw_ids or not c.raw)


# --------------------------------------------------------------------------------------------------
# Values


def _iso(value: dt.datetime | None) -> str | None:
    """Canonical UTC ISO 8601 with microseconds; naive values (SQLite) are stored UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def _parse_datetime(value: str) -> dt.datetime:
    out = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return out.replace(tzinfo=dt.timezone.utc) if out.tzinfo is None else out.astimezone(dt.timezone.utc)


def pseudonym(salt: str, platform: str, worker_id: str) -> str:
    """HMAC-SHA256(salt, "platform:worker_id"), first 16 hex digits."""
    mac = hmac.new(salt.encode("utf-8"), f"{platform}:{worker_id}".encode("utf-8"), hashlib.sha256)
    return mac.hexdigest()[:PSEUDONYM_HEX]


@dataclass
class ExportBundle:
    """An export in memory. `definition` is study.json; `tables` maps each table name to its rows, as
    dicts with canonical values (ints, floats, bools, strings, JSON values, ISO 8601 UTC strings for
    times, None for missing), so a bundle read back from any format compares equal to the original."""

    definition: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Where each row was read from ("trials.csv line 18"), for error messages; not part of equality.
    locations: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def raw_ids(self) -> bool:
        return bool(self.definition.get("raw_ids"))

    @property
    def study_name(self) -> str:
        return str(self.definition.get("study", {}).get("name", ""))

    def columns(self, table: str) -> tuple[Column, ...]:
        return _columns(table, self.raw_ids)

    def base_name(self) -> str:
        return f"hype-export-{self.definition.get('study', {}).get('id', 'study')}"


# --------------------------------------------------------------------------------------------------
# Export


def export_tables(session: Session, study: Study, *, raw_ids: bool = False) -> ExportBundle:
    """Everything needed to recompute the study's numbers, as an ExportBundle (see module docstring)."""
    models = list(session.execute(
        select(GeneratorModel.id, GeneratorModel.name, GeneratorModel.position, GeneratorModel.description)
        .where(GeneratorModel.study_id == study.id).order_by(GeneratorModel.position, GeneratorModel.id)
    ))
    model_name = {m.id: m.name for m in models}
    salt = study.export_salt

    catch: dict[int, list[bool]] = {}
    for assignment_id, correct in session.execute(
        select(Judgment.assignment_id, Judgment.correct).join(Trial, Judgment.trial_id == Trial.id)
        .join(Assignment, Judgment.assignment_id == Assignment.id)
        .where(Assignment.study_id == study.id, Trial.is_catch.is_(True))
    ):
        catch.setdefault(assignment_id, []).append(bool(correct))
    has_catch = study_settings(study).catch.enabled

    participants = []
    rows = session.execute(
        select(Assignment, Participant).join(Participant, Assignment.participant_id == Participant.id)
        .where(Assignment.study_id == study.id).order_by(Assignment.id)
    )
    for a, p in rows:
        row = {
            "evaluator": a.id,
            "participant": pseudonym(salt, p.platform, p.worker_id),
            "platform": p.platform,
            "model": model_name[a.model_id],
            "stage": a.stage,
            "draw_key": a.draw_key,
            "qualification_real_correct": a.qualification_real_correct,
            "qualification_fake_correct": a.qualification_fake_correct,
            "qualification_passed": a.qualification_passed,
            "refresh_interval_ms": a.refresh_interval_ms,
            "window_width": a.window_width,
            "window_height": a.window_height,
            "created_at": _iso(a.created_at),
            "completed_at": _iso(a.completed_at),
            "catch_correct": sum(catch.get(a.id, [])) if has_catch else None,
            "catch_answered": len(catch.get(a.id, [])) if has_catch else None,
            "catch_accuracy": catch_accuracy(catch.get(a.id, [])),
        }
        if raw_ids:
            row.update(worker_id=p.worker_id, platform_ids=dict(p.platform_ids or {}), user_agent=p.user_agent)
        participants.append(row)

    trials = []
    rows = session.execute(
        select(Trial.assignment_id, Trial.position, Trial.phase, Trial.is_catch, Trial.block, Image.pixel_sha256,
               Trial.is_fake, Trial.requested_ms.label("trial_requested_ms"), Judgment.id.label("judgment_id"), Judgment.judged_fake,
               Judgment.correct, Judgment.requested_ms, Judgment.measured_ms, Judgment.mask_measured_ms,
               Judgment.refresh_interval_ms, Judgment.reaction_ms, Judgment.client_timestamps, Judgment.focus_lost,
               Judgment.flagged, Judgment.flag_reasons, Judgment.received_at)
        .join(Assignment, Trial.assignment_id == Assignment.id)
        .join(Image, Trial.image_id == Image.id)
        .outerjoin(Judgment, Judgment.trial_id == Trial.id)
        .where(Assignment.study_id == study.id)
        .order_by(Trial.assignment_id, Trial.position)
    )
    for r in rows:
        answered = r.judgment_id is not None
        trials.append({
            "evaluator": r.assignment_id,
            "position": r.position,
            "phase": r.phase,
            "catch": bool(r.is_catch),
            "block": r.block,
            "image": r.pixel_sha256,
            "is_fake": bool(r.is_fake),
            "trial_requested_ms": r.trial_requested_ms,
            "judged_fake": bool(r.judged_fake) if answered else None,
            "correct": bool(r.correct) if answered else None,
            "requested_ms": r.requested_ms,
            "measured_ms": r.measured_ms,
            "mask_measured_ms": r.mask_measured_ms,
            "refresh_interval_ms": r.refresh_interval_ms,
            "reaction_ms": r.reaction_ms,
            "client_timestamps": r.client_timestamps,
            "focus_lost": bool(r.focus_lost) if answered else None,
            "flagged": bool(r.flagged) if answered else None,
            "flag_reasons": r.flag_reasons,
            "received_at": _iso(r.received_at),
        })

    images = [
        {"image": r.pixel_sha256, "pool": r.pool, "model": model_name.get(r.model_id), "width": r.width, "height": r.height}
        for r in session.execute(
            select(Image.pixel_sha256, Image.pool, Image.model_id, Image.width, Image.height)
            .where(Image.study_id == study.id, Image.pool.in_(("real", "fake", "catch"))).order_by(Image.id)
        )
    ]
    exclusions = [
        {"evaluator": e.assignment_id, "reason": e.reason, "rule": e.rule, "created_at": _iso(e.created_at),
         "revoked_at": _iso(e.revoked_at)}
        for e in session.scalars(
            select(Exclusion).join(Assignment, Exclusion.assignment_id == Assignment.id)
            .where(Assignment.study_id == study.id).order_by(Exclusion.id)
        )
    ]
    staircases = [
        {"evaluator": s.assignment_id, "block": s.block, "config": s.config, "state": s.state,
         "updated_at": _iso(s.updated_at)}
        for s in session.scalars(
            select(StaircaseRecord).join(Assignment, StaircaseRecord.assignment_id == Assignment.id)
            .where(Assignment.study_id == study.id).order_by(StaircaseRecord.assignment_id, StaircaseRecord.block)
        )
    ]
    metrics = [
        {"model": model_name[m.model_id], "values": m.values, "weights_sha256": m.weights_sha256,
         "weights_source": m.weights_source, "device": m.device, "created_at": _iso(m.created_at)}
        for m in session.scalars(select(MetricResult).where(MetricResult.study_id == study.id).order_by(MetricResult.id))
        if m.model_id in model_name
    ]
    tables = {"participants": participants, "trials": trials, "images": images, "exclusions": exclusions,
              "staircases": staircases}
    definition = _definition(study, models, tables, metrics, raw_ids)
    return ExportBundle(definition=definition, tables=tables)


def _definition(study: Study, models: list, tables: dict[str, list[dict]], metrics: list[dict], raw_ids: bool) -> dict:
    stages: dict[str, int] = {}
    for p in tables["participants"]:
        stages[p["stage"]] = stages.get(p["stage"], 0) + 1
    answered = [t for t in tables["trials"] if t["judged_fake"] is not None]
    pools: dict[str, int] = {}
    for img in tables["images"]:
        pools[img["pool"]] = pools.get(img["pool"], 0) + 1
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "hype_version": __version__,
        "exported_at": _iso(utcnow()),
        "raw_ids": raw_ids,
        "pseudonyms": "participants.participant = HMAC-SHA256(per-study secret salt, 'platform:worker_id'), "
                      f"first {PSEUDONYM_HEX} hex digits; the salt is not exported"
                      + ("; this export ALSO holds raw worker ids (personal data)" if raw_ids else ""),
        "study": {
            "id": study.id,
            "name": study.name,
            "mode": study.mode,
            "seed": study.seed,
            "status": study.status,
            "settings": study.settings,
            "created_at": _iso(study.created_at),
            "published_at": _iso(study.published_at),
            "closed_at": _iso(study.closed_at),
        },
        "models": [{"name": m.name, "position": m.position, "description": m.description} for m in models],
        "counts": {
            "evaluators": len(tables["participants"]),
            "evaluators_by_stage": dict(sorted(stages.items())),
            "trials": len(tables["trials"]),
            "judgments": len(answered),
            "flagged_judgments": sum(1 for t in answered if t["flagged"]),
            "exclusions_in_force": sum(1 for e in tables["exclusions"] if e["revoked_at"] is None),
            "exclusions_revoked": sum(1 for e in tables["exclusions"] if e["revoked_at"] is not None),
            "images": dict(sorted(pools.items())),
            "staircases": len(tables["staircases"]),
        },
        "metrics": metrics,
        "tables": {
            name: {"rows": len(tables[name]),
                   "columns": {c.name: f"{c.kind}{'' if c.required else ', optional'}: {c.description}"
                               for c in _columns(name, raw_ids)}}
            for name in TABLE_ORDER
        },
    }


# --------------------------------------------------------------------------------------------------
# Writers


def _csv_cell(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "bool":
        return "true" if value else "false"
    if kind == "float":
        return repr(float(value))
    if kind == "json":
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _csv_bytes(bundle: ExportBundle, table: str) -> bytes:
    cols = bundle.columns(table)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.name for c in cols])
    for row in bundle.tables[table]:
        writer.writerow([_csv_cell(row.get(c.name), c.kind) for c in cols])
    return buf.getvalue().encode("utf-8")


def _definition_bytes(bundle: ExportBundle) -> bytes:
    return (json.dumps(bundle.definition, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _json_bytes(bundle: ExportBundle) -> bytes:
    doc = {"definition": bundle.definition, "tables": {t: bundle.tables[t] for t in TABLE_ORDER}}
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _require_pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError("the parquet format needs pyarrow, which is not installed: "
                          "pip install -e '.[parquet]' (or use --format csv / json)") from None
    return pyarrow, pq


_ARROW_KIND = {"int": "int64", "float": "float64", "bool": "bool_", "str": "string", "json": "string", "datetime": "string"}


def _parquet_bytes(bundle: ExportBundle, table: str) -> bytes:
    pa, pq = _require_pyarrow()
    cols = bundle.columns(table)
    rows = bundle.tables[table]
    arrays, fields = [], []
    for c in cols:
        values = [r.get(c.name) for r in rows]
        if c.kind == "json":
            values = [None if v is None else json.dumps(v, separators=(",", ":")) for v in values]
        typ = getattr(pa, _ARROW_KIND[c.kind])()
        arrays.append(pa.array(values, type=typ))
        fields.append(pa.field(c.name, typ, metadata={"hype_kind": c.kind}))
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), buf)
    return buf.getvalue()


def _files(bundle: ExportBundle, fmt: str) -> list[tuple[str, bytes]]:
    """(file name, content) of an export in `fmt`."""
    if fmt == "json":
        return [(JSON_DOCUMENT, _json_bytes(bundle))]
    if fmt == "csv":
        return [(DEFINITION_FILE, _definition_bytes(bundle))] + [(f"{t}.csv", _csv_bytes(bundle, t)) for t in TABLE_ORDER]
    if fmt == "parquet":
        _require_pyarrow()
        return [(DEFINITION_FILE, _definition_bytes(bundle))] + [(f"{t}.parquet", _parquet_bytes(bundle, t)) for t in TABLE_ORDER]
    raise ExportError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def write_export(bundle: ExportBundle, out: str | Path, fmt: str = "csv", *, overwrite: bool = False) -> list[Path]:
    """Write the export; returns the files written.

    csv / parquet: `out` is a folder (created if needed) that receives study.json and one file per
    table. json: `out` is the document's path when it ends in .json, else a folder that receives
    hype-export.json. A path ending in .zip gets the zipped export (`export_zip_bytes`). Existing
    files are not replaced unless `overwrite`."""
    out = Path(out)
    if out.suffix.lower() == ".zip":
        targets = [(out, export_zip_bytes(bundle, fmt))]
    elif fmt == "json" and out.suffix.lower() == ".json":
        targets = [(out, _json_bytes(bundle))]
    else:
        if out.exists() and not out.is_dir():
            raise ExportError(f"{out} exists and is not a folder")
        targets = [(out / name, data) for name, data in _files(bundle, fmt)]
    clashes = [str(p) for p, _ in targets if p.exists()]
    if clashes and not overwrite:
        raise ExportError(f"would overwrite {', '.join(clashes)}; choose another output or allow overwriting")
    written = []
    for path, data in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        written.append(path)
    return written


def export_zip_bytes(bundle: ExportBundle, fmt: str = "csv") -> bytes:
    """The export in `fmt` as a zip (files inside one folder named after the export)."""
    files = _files(bundle, fmt)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            zf.writestr(f"{bundle.base_name()}/{name}", data)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# Reading


class _Source:
    """The files of an export, from a folder or a zip: name -> bytes."""

    def __init__(self, label: str, names: list[str], read: Callable[[str], bytes]):
        self.label, self.names, self._read = label, names, read

    def read(self, name: str) -> bytes:
        return self._read(name)


def _zip_source(path: Path) -> _Source:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ExportError(f"{path}: not a readable zip ({exc})") from exc
    members = [i.filename for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")
               and not Path(i.filename).name.startswith(".")]
    # Files may sit at the root or in one folder (as export_zip_bytes writes them).
    anchors = [m for m in members if Path(m).name in (DEFINITION_FILE, JSON_DOCUMENT)] or \
              [m for m in members if m.lower().endswith(".json")]
    if not anchors:
        raise ExportError(f"{path}: no study.json or JSON export document in the zip")
    prefix = anchors[0][: len(anchors[0]) - len(Path(anchors[0]).name)]
    names = {m[len(prefix):]: m for m in members if m.startswith(prefix) and "/" not in m[len(prefix):]}
    return _Source(str(path), sorted(names), lambda n: zf.read(names[n]))


def _dir_source(path: Path) -> _Source:
    names = sorted(p.name for p in path.iterdir() if p.is_file())
    return _Source(str(path), names, lambda n: (path / n).read_bytes())


def read_export(path: str | Path) -> ExportBundle:
    """An export from a csv / parquet folder, a JSON document, a study.json inside a folder, or a zip
    of any of them; every value checked and brought to canonical form."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path}: no such file or folder")
    if path.is_file() and path.name == DEFINITION_FILE:
        path = path.parent
    if path.is_dir():
        source = _dir_source(path)
    elif zipfile.is_zipfile(path):
        source = _zip_source(path)
    else:
        return _read_json_document(path.read_bytes(), str(path))
    if DEFINITION_FILE not in source.names:
        docs = [n for n in source.names if n.lower().endswith(".json")]
        if len(docs) == 1:
            return _read_json_document(source.read(docs[0]), f"{source.label}:{docs[0]}" if path.is_file() else str(path / docs[0]))
        raise ExportError(f"{source.label}: no {DEFINITION_FILE} (a csv or parquet export) and no single JSON export document")
    where = lambda n: f"{source.label}:{n}" if path.is_file() else str(path / n)  # noqa: E731
    definition = _check_definition(_load_json(source.read(DEFINITION_FILE), where(DEFINITION_FILE)), where(DEFINITION_FILE))
    raw_ids = bool(definition.get("raw_ids"))
    tables = {}
    for table in TABLE_ORDER:
        if f"{table}.csv" in source.names:
            name = f"{table}.csv"
            tables[table] = _parse_csv(source.read(name), table, where(name), raw_ids)
        elif f"{table}.parquet" in source.names:
            name = f"{table}.parquet"
            tables[table] = _parse_parquet(source.read(name), table, where(name), raw_ids)
        else:
            raise ExportError(f"{source.label}: missing {table}.csv (or {table}.parquet)")
        _check_row_count(definition, table, len(tables[table]), where(name))
    return _bundle_from(definition, tables)


def _load_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{where}: not valid JSON ({exc})") from exc


def _read_json_document(data: bytes, where: str) -> ExportBundle:
    doc = _load_json(data, where)
    if not isinstance(doc, dict) or "definition" not in doc or "tables" not in doc:
        raise ExportError(f"{where}: not a HYPE export document (expected an object with 'definition' and 'tables')")
    definition = _check_definition(doc["definition"], f"{where} definition")
    raw_ids = bool(definition.get("raw_ids"))
    tables_in = doc["tables"]
    if not isinstance(tables_in, dict):
        raise ExportError(f"{where}: 'tables' must be an object of table name -> list of rows")
    tables = {}
    for table in TABLE_ORDER:
        rows = tables_in.get(table)
        if not isinstance(rows, list):
            raise ExportError(f"{where}: tables.{table} is missing or not a list of rows")
        tables[table] = _parse_records(rows, table, where, raw_ids)
        _check_row_count(definition, table, len(tables[table]), f"{where} tables.{table}")
    return _bundle_from(definition, tables)


def _check_definition(definition: Any, where: str) -> dict[str, Any]:
    if not isinstance(definition, dict) or definition.get("format") != FORMAT_NAME:
        raise ExportError(f"{where}: not a HYPE export definition (format must be {FORMAT_NAME!r})")
    version = definition.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION or version < 1:
        raise ExportError(f"{where}: format_version {version!r} is not one this hype ({__version__}) reads "
                          f"(1 to {FORMAT_VERSION})")
    study = definition.get("study")
    if not isinstance(study, dict):
        raise ExportError(f"{where}: 'study' must be an object with name, mode, seed and settings")
    for key in ("name", "mode", "seed", "settings"):
        if key not in study:
            raise ExportError(f"{where}: study.{key} is missing")
    if study["mode"] not in MODES:
        raise ExportError(f"{where}: study.mode must be one of {', '.join(MODES)}, not {study['mode']!r}")
    if isinstance(study["seed"], bool) or not isinstance(study["seed"], int):
        raise ExportError(f"{where}: study.seed must be an integer, not {study['seed']!r}")
    try:
        settings = StudySettings.from_dict(study["settings"])
    except SettingsError as exc:
        raise ExportError(f"{where}: study.settings: {exc}") from exc
    if settings.mode != study["mode"]:
        raise ExportError(f"{where}: study.settings.mode {settings.mode!r} differs from study.mode {study['mode']!r}")
    models = definition.get("models")
    if not isinstance(models, list) or not models or any(not isinstance(m, dict) or not isinstance(m.get("name"), str)
                                                        or not m["name"].strip() for m in models):
        raise ExportError(f"{where}: 'models' must be a non-empty list of {{name, position, description}}")
    names = [m["name"] for m in models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ExportError(f"{where}: model name(s) listed twice: {', '.join(dupes)}")
    metrics = definition.get("metrics", [])
    if not isinstance(metrics, list) or any(not isinstance(m, dict) or m.get("model") not in names
                                            or not isinstance(m.get("values"), dict) for m in metrics):
        raise ExportError(f"{where}: 'metrics' must be a list of {{model, values, ...}} naming the study's models")
    return definition


def _check_row_count(definition: dict, table: str, n: int, where: str) -> None:
    declared = (definition.get("tables") or {}).get(table, {}).get("rows") if isinstance(definition.get("tables"), dict) else None
    if isinstance(declared, int) and declared != n:
        raise ExportError(f"{where}: has {n} rows but study.json says {declared} (a truncated or edited file?)")


def _bad(where: str, column: str, message: str) -> ExportError:
    return ExportError(f"{where}, column {column!r}: {message}")


def _parse_text(value: str, col: Column, where: str) -> Any:
    """A CSV cell -> canonical value."""
    if value == "":
        if col.kind == "str" and col.required:
            return ""
        if col.required:
            raise _bad(where, col.name, "is empty but required")
        return None
    try:
        if col.kind == "int":
            return int(value.strip())
        if col.kind == "float":
            return float(value.strip())
        if col.kind == "bool":
            v = value.strip().lower()
            if v in ("true", "1"):
                return True
            if v in ("false", "0"):
                return False
            raise _bad(where, col.name, f"{value!r} is not a boolean (true or false)")
        if col.kind == "json":
            return json.loads(value)
        if col.kind == "datetime":
            return _iso(_parse_datetime(value))
    except ValueError as exc:
        if isinstance(exc, ExportError):
            raise
        what = {"int": "an integer", "float": "a number", "json": "valid JSON", "datetime": "an ISO 8601 time"}[col.kind]
        raise _bad(where, col.name, f"{value!r} is not {what}") from None
    return value


def _parse_native(value: Any, col: Column, where: str) -> Any:
    """A JSON / Parquet value -> canonical value."""
    if value is None:
        if col.required:
            raise _bad(where, col.name, "is missing but required")
        return None
    kind = col.kind
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(where, col.name, f"{value!r} is not an integer")
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(where, col.name, f"{value!r} is not a number")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _bad(where, col.name, f"{value!r} is not a boolean (true or false)")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise _bad(where, col.name, f"{value!r} is not a string")
        return value
    if kind == "datetime":
        if not isinstance(value, str):
            raise _bad(where, col.name, f"{value!r} is not an ISO 8601 time")
        try:
            return _iso(_parse_datetime(value))
        except ValueError:
            raise _bad(where, col.name, f"{value!r} is not an ISO 8601 time") from None
    return value  # json


def _check_header(present: Iterable[str], table: str, where: str, raw_ids: bool) -> None:
    have = set(present)
    missing = [c.name for c in TABLES[table] if not (c.raw or c.added) and c.name not in have]
    if missing:
        raise ExportError(f"{where}: missing column(s) {', '.join(missing)}")


def _parse_csv(data: bytes, table: str, where: str, raw_ids: bool) -> list[tuple[str, dict[str, Any]]]:
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExportError(f"{where}: not UTF-8 text ({exc})") from exc
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ExportError(f"{where}: empty file (expected a header row)") from None
    except csv.Error as exc:
        raise ExportError(f"{where}: not readable CSV ({exc})") from exc
    header = [h.strip() for h in header]
    _check_header(header, table, where, raw_ids)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ExportError(f"{where}: column(s) named twice: {', '.join(dupes)}")
    index = {h: i for i, h in enumerate(header)}
    cols = [c for c in TABLES[table] if c.name in index]
    out = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cells):
                continue
            if len(cells) != len(header):
                raise ExportError(f"{where} line {line}: {len(cells)} cells, but the header has {len(header)}")
            here = f"{where} line {line}"
            row = {c.name: _parse_text(cells[index[c.name]], c, here) for c in cols}
            out.append((here, row))
    except csv.Error as exc:
        raise ExportError(f"{where} line {reader.line_num}: not readable CSV ({exc})") from exc
    return out


def _parse_records(rows: list, table: str, where: str, raw_ids: bool) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for i, rec in enumerate(rows):
        here = f"{where} {table}[{i}]"
        if not isinstance(rec, dict):
            raise ExportError(f"{here}: a row must be an object of column -> value")
        missing = [c.name for c in TABLES[table] if not (c.raw or c.added) and c.name not in rec]
        if missing:
            raise ExportError(f"{here}: missing column(s) {', '.join(missing)}")
        row = {c.name: _parse_native(rec[c.name], c, here) for c in TABLES[table] if c.name in rec}
        out.append((here, row))
    return out


def _parse_parquet(data: bytes, table: str, where: str, raw_ids: bool) -> list[tuple[str, dict[str, Any]]]:
    _, pq = _require_pyarrow()
    try:
        t = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises its own error types
        raise ExportError(f"{where}: not a readable Parquet file ({exc})") from exc
    _check_header(t.column_names, table, where, raw_ids)
    cols = [c for c in TABLES[table] if c.name in t.column_names]
    out = []
    for i, rec in enumerate(t.to_pylist()):
        here = f"{where} row {i + 1}"
        row = {}
        for c in cols:
            value = rec[c.name]
            if c.kind == "json" and isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    raise _bad(here, c.name, f"{value!r} is not valid JSON") from None
            row[c.name] = _parse_native(value, c, here)
        out.append((here, row))
    return out


# --------------------------------------------------------------------------------------------------
# Import


def _bundle_from(definition: dict[str, Any], parsed: dict[str, list[tuple[str, dict[str, Any]]]]) -> ExportBundle:
    return ExportBundle(definition, {t: [row for _, row in rows] for t, rows in parsed.items()},
                        {t: [here for here, _ in rows] for t, rows in parsed.items()})


def _validate(bundle: ExportBundle) -> None:
    """Cross-table checks, each naming the row at fault."""

    def _where(row: dict[str, Any], table: str, k: int) -> str:
        locations = bundle.locations.get(table) or []
        return locations[k] if k < len(locations) else f"{table} row {k + 1}"

    models = {m["name"] for m in bundle.definition["models"]}
    evaluators: dict[int, dict] = {}
    first_at: dict[int, str] = {}
    pseudonyms: dict[str, str] = {}
    for k, p in enumerate(bundle.tables["participants"]):
        here = _where(p, "participants", k)
        if p["evaluator"] in evaluators:
            raise _bad(here, "evaluator", f"evaluator {p['evaluator']} is listed twice (first at {first_at[p['evaluator']]})")
        if p["evaluator"] <= 0:
            raise _bad(here, "evaluator", f"{p['evaluator']} is not a positive id")
        if p["model"] not in models:
            raise _bad(here, "model", f"{p['model']!r} is not one of the study's models ({', '.join(sorted(models))})")
        if p["stage"] not in ASSIGNMENT_STAGES:
            raise _bad(here, "stage", f"{p['stage']!r} is not one of {', '.join(ASSIGNMENT_STAGES)}")
        if not p["participant"] or len(p["participant"]) > 200:
            raise _bad(here, "participant", "must be 1-200 characters")
        if p["participant"] in pseudonyms:
            raise _bad(here, "participant", f"{p['participant']!r} is listed twice (first at {pseudonyms[p['participant']]})")
        pseudonyms[p["participant"]] = here
        evaluators[p["evaluator"]] = p
        first_at[p["evaluator"]] = here

    images: dict[str, dict] = {}
    for k, img in enumerate(bundle.tables["images"]):
        here = _where(img, "images", k)
        if img["image"] in images:
            raise _bad(here, "image", f"{img['image']} is listed twice")
        if not img["image"] or len(img["image"]) > 64:
            raise _bad(here, "image", "must be a pixel hash of 1-64 characters")
        if img["pool"] not in ("real", "fake", "catch"):
            raise _bad(here, "pool", f"{img['pool']!r} is not real, fake or catch")
        if img["pool"] in ("fake", "catch") and img["model"] not in models:
            raise _bad(here, "model", f"a fake image needs one of the study's models, not {img['model']!r}")
        if img["pool"] == "real" and img["model"] is not None:
            raise _bad(here, "model", "a real image belongs to no model")
        if img["width"] <= 0 or img["height"] <= 0:
            raise _bad(here, "width", "image sizes must be > 0")
        images[img["image"]] = img

    seen_trials: dict[tuple[int, int], str] = {}
    answer_only = ("correct", "requested_ms", "measured_ms", "mask_measured_ms", "refresh_interval_ms", "reaction_ms",
                   "client_timestamps", "focus_lost", "flagged", "flag_reasons", "received_at")
    for k, t in enumerate(bundle.tables["trials"]):
        here = _where(t, "trials", k)
        if t["evaluator"] not in evaluators:
            raise _bad(here, "evaluator", f"unknown evaluator {t['evaluator']} (not in participants)")
        key = (t["evaluator"], t["position"])
        if key in seen_trials:
            raise ExportError(f"{here}: duplicate trial: evaluator {key[0]} position {key[1]} is already at {seen_trials[key]}")
        seen_trials[key] = here
        if t["phase"] not in PHASES:
            raise _bad(here, "phase", f"{t['phase']!r} is not one of {', '.join(PHASES)}")
        img = images.get(t["image"])
        if img is None:
            raise _bad(here, "image", f"unknown image {t['image']} (not in images)")
        if t.get("catch") and not t["phase"] == "task":
            raise _bad(here, "catch", "only task trials can be catch trials")
        if img["pool"] == "catch" and not t.get("catch"):
            raise _bad(here, "catch", f"image {t['image'][:12]}... is a degraded catch image, so this must be a catch trial")
        if t["is_fake"] != (img["pool"] in ("fake", "catch")):
            raise _bad(here, "is_fake", f"is {str(t['is_fake']).lower()} but image {t['image'][:12]}... is in the {img['pool']} pool")
        if t["judged_fake"] is None:
            filled = [c for c in answer_only if t.get(c) is not None]
            if filled:
                raise ExportError(f"{here}: judgment column(s) {', '.join(filled)} are set but judged_fake is empty")
            continue
        if t["correct"] is None or t["received_at"] is None:
            raise ExportError(f"{here}: an answered trial (judged_fake set) needs correct and received_at")
        if t["correct"] != (t["judged_fake"] == t["is_fake"]):
            raise _bad(here, "correct", f"is {str(t['correct']).lower()}, but judged_fake={str(t['judged_fake']).lower()} "
                                        f"and is_fake={str(t['is_fake']).lower()}")
        if t["mask_measured_ms"] is not None and (not isinstance(t["mask_measured_ms"], list) or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in t["mask_measured_ms"])):
            raise _bad(here, "mask_measured_ms", "must be a JSON list of numbers")
        if t["client_timestamps"] is not None and not isinstance(t["client_timestamps"], dict):
            raise _bad(here, "client_timestamps", "must be a JSON object")
        if t["flag_reasons"] is not None and len(t["flag_reasons"]) > 200:
            raise _bad(here, "flag_reasons", "is longer than 200 characters")

    for k, e in enumerate(bundle.tables["exclusions"]):
        here = _where(e, "exclusions", k)
        if e["evaluator"] not in evaluators:
            raise _bad(here, "evaluator", f"unknown evaluator {e['evaluator']} (not in participants)")
        if len(e["reason"]) > 500:
            raise _bad(here, "reason", "is longer than 500 characters")
        if e["rule"] is not None and len(e["rule"]) > 100:
            raise _bad(here, "rule", "is longer than 100 characters")

    from hype import staircase as stairs

    seen_blocks: dict[tuple[int, int], str] = {}
    for k, s in enumerate(bundle.tables["staircases"]):
        here = _where(s, "staircases", k)
        if s["evaluator"] not in evaluators:
            raise _bad(here, "evaluator", f"unknown evaluator {s['evaluator']} (not in participants)")
        key = (s["evaluator"], s["block"])
        if key in seen_blocks:
            raise ExportError(f"{here}: duplicate staircase: evaluator {key[0]} block {key[1]} is already at {seen_blocks[key]}")
        seen_blocks[key] = here
        if isinstance(s["config"], dict) and s["config"].get("procedure") == "quest+":
            from hype.adaptive import QuestConfig

            checks = (("config", QuestConfig.from_dict), ("state", lambda st: [(int(k), int(c)) for k, c in st["history"]]))
        else:
            checks = (("config", stairs.StaircaseConfig.from_dict), ("state", stairs.StaircaseState.from_dict))
        for col, parse in checks:
            try:
                parse(s[col])
            except (ValueError, TypeError, KeyError) as exc:
                raise _bad(here, col, f"not a valid staircase {col}: {exc}") from None


def _sequence_floor(session: Session) -> int:
    """Every assignment id in use or already handed out is below the returned value."""
    top = session.scalar(select(func.max(Assignment.id))) or 0
    if session.get_bind().dialect.name == "postgresql":
        # Imports serialise among themselves; live sessions keep taking ids from the sequence.
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('hype.exports.import_results'))"))
        reserved = session.scalar(text("SELECT nextval(pg_get_serial_sequence('assignments', 'id'))"))
        top = max(top, int(reserved) + _SEQUENCE_MARGIN)
    return top + 1


def _new_evaluator_ids(old_ids: list[int], floor: int) -> dict[int, int]:
    """New ids int(prefix + str(old)), all >= floor: the same lexicographic and numeric order as the
    old ids (what score_study's bootstrap order depends on). Falls back to one same-width range in
    the old ids' lexicographic order (keeps the order score_study uses) if prefixed ids would not
    fit in a 32-bit integer column."""
    if not old_ids:
        return {}
    shortest = min(len(str(i)) for i in old_ids)
    prefix = max(1, -(-floor // 10**shortest))  # smallest prefix with prefix * 10**shortest >= floor
    mapped = {i: int(f"{prefix}{i}") for i in old_ids}
    if max(mapped.values()) <= INT32_MAX:
        return mapped
    n = len(old_ids)
    width = len(str(floor))
    start = floor if len(str(floor + n - 1)) == width else 10**width
    if start + n - 1 > INT32_MAX:
        raise ExportError("no room for the imported evaluators' ids in this database (ids would exceed 2^31)")
    return {old: start + k for k, old in enumerate(sorted(old_ids, key=str))}


def _advance_sequence(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            "SELECT setval(pg_get_serial_sequence('assignments', 'id'), "
            "GREATEST((SELECT MAX(id) FROM assignments), nextval(pg_get_serial_sequence('assignments', 'id'))))"
        ))


def import_bundle(session: Session, bundle: ExportBundle, *, name: str | None = None) -> Study:
    """Create a new closed study from `bundle` (caller commits). See the module docstring."""
    _validate(bundle)
    d = bundle.definition
    src = d["study"]
    new_name = (name or f"{src['name']} (imported)").strip()[:200]
    try:
        study = create_study(session, name=new_name, mode=src["mode"], seed=src["seed"], settings=src["settings"])
    except StudyError as exc:
        raise ExportError(f"study.json: {exc}") from exc
    models = {}
    for m in sorted(d["models"], key=lambda m: (m.get("position", 0), m["name"])):
        models[m["name"]] = add_model(session, study, m["name"], m.get("description")).id

    image_ids: dict[str, int] = {}
    if bundle.tables["images"]:
        session.execute(insert(Image), [
            {"study_id": study.id, "pool": img["pool"],
             "model_id": models.get(img["model"]) if img["pool"] in ("fake", "catch") else None,
             "pixel_sha256": img["image"], "file_sha256": img["image"], "width": img["width"], "height": img["height"],
             "source_name": f"imported:{img['image']}"}
            for img in bundle.tables["images"]
        ])
        image_ids = dict(session.execute(select(Image.pixel_sha256, Image.id).where(Image.study_id == study.id)).all())

    participants = bundle.tables["participants"]
    ids = _new_evaluator_ids([p["evaluator"] for p in participants], _sequence_floor(session))
    now = utcnow()
    if participants:
        session.execute(insert(Participant), [
            {"study_id": study.id, "platform": IMPORT_PLATFORM, "worker_id": p["participant"],
             "platform_ids": {"source_platform": p["platform"], "source_evaluator": p["evaluator"]},
             "user_agent": None, "created_at": _parse_datetime(p["created_at"])}
            for p in participants
        ])
        participant_ids = dict(session.execute(
            select(Participant.worker_id, Participant.id).where(Participant.study_id == study.id)).all())
        session.execute(insert(Assignment), [
            {"id": ids[p["evaluator"]], "participant_id": participant_ids[p["participant"]], "study_id": study.id,
             "model_id": models[p["model"]], "token": secrets.token_urlsafe(32), "stage": p["stage"],
             "draw_key": p["draw_key"], "completion_code": None,
             "qualification_real_correct": p["qualification_real_correct"],
             "qualification_fake_correct": p["qualification_fake_correct"],
             "qualification_passed": p["qualification_passed"], "refresh_interval_ms": p["refresh_interval_ms"],
             "window_width": p["window_width"], "window_height": p["window_height"],
             "created_at": _parse_datetime(p["created_at"]),
             "completed_at": None if p["completed_at"] is None else _parse_datetime(p["completed_at"]),
             "last_active_at": _parse_datetime(p["completed_at"] or p["created_at"])}
            for p in participants
        ])
        _advance_sequence(session)

    trials = bundle.tables["trials"]
    if trials:
        session.execute(insert(Trial), [
            {"assignment_id": ids[t["evaluator"]], "phase": t["phase"], "block": t["block"], "position": t["position"],
             "image_id": image_ids[t["image"]], "is_fake": t["is_fake"], "is_catch": bool(t.get("catch")),
             "image_token": secrets.token_urlsafe(16),
             "requested_ms": t["trial_requested_ms"]}
            for t in trials
        ])
        trial_ids = {(r.assignment_id, r.position): r.id for r in session.execute(
            select(Trial.assignment_id, Trial.position, Trial.id).join(Assignment, Trial.assignment_id == Assignment.id)
            .where(Assignment.study_id == study.id))}
        answered = [t for t in trials if t["judged_fake"] is not None]
        if answered:
            session.execute(insert(Judgment), [
                {"trial_id": trial_ids[(ids[t["evaluator"]], t["position"])], "assignment_id": ids[t["evaluator"]],
                 "idempotency_key": f"{ids[t['evaluator']]}:import-{t['position']}", "judged_fake": t["judged_fake"],
                 "correct": t["correct"], "requested_ms": t["requested_ms"], "measured_ms": t["measured_ms"],
                 "mask_measured_ms": t["mask_measured_ms"], "refresh_interval_ms": t["refresh_interval_ms"],
                 "reaction_ms": t["reaction_ms"], "client_timestamps": t["client_timestamps"],
                 "focus_lost": bool(t["focus_lost"]), "flagged": bool(t["flagged"]), "flag_reasons": t["flag_reasons"],
                 "received_at": _parse_datetime(t["received_at"])}
                for t in answered
            ])
    if bundle.tables["exclusions"]:
        session.execute(insert(Exclusion), [
            {"assignment_id": ids[e["evaluator"]], "reason": e["reason"], "rule": e["rule"],
             "created_at": _parse_datetime(e["created_at"]),
             "revoked_at": None if e["revoked_at"] is None else _parse_datetime(e["revoked_at"])}
            for e in bundle.tables["exclusions"]
        ])
    if bundle.tables["staircases"]:
        session.execute(insert(StaircaseRecord), [
            {"assignment_id": ids[s["evaluator"]], "block": s["block"], "config": s["config"], "state": s["state"],
             "updated_at": now if s["updated_at"] is None else _parse_datetime(s["updated_at"])}
            for s in bundle.tables["staircases"]
        ])
    for m in d.get("metrics", []):
        session.add(MetricResult(
            study_id=study.id, model_id=models[m["model"]], values=m["values"],
            weights_sha256=str(m.get("weights_sha256") or "")[:64], weights_source=str(m.get("weights_source") or "")[:500],
            device=str(m.get("device") or "")[:50],
            created_at=_parse_datetime(m["created_at"]) if m.get("created_at") else now,
        ))
    study.status = "closed"
    study.published_at = _parse_datetime(src["published_at"]) if src.get("published_at") else None
    study.closed_at = now
    study.completion_code, study.qualification_fail_code = new_code(), new_code()
    session.flush()
    session.expire(study)
    return study


def import_results(session: Session, path: str | Path, *, name: str | None = None) -> Study:
    """Read an export (csv / parquet folder, JSON document, or a zip of either) and create a new,
    closed study from it whose `score_study` equals the original's. Caller commits; on any error
    nothing is written (the caller rolls back) and the message names the file, row and column."""
    return import_bundle(session, read_export(path), name=name)

