"""Core statements compiled once and run on a DB-API cursor: the hot paths' way past SQLAlchemy's
per-execute layer.

Executing even a cached Core statement through a Connection costs the app about 0.1 ms (execution
context, parameter processing, the result's metadata and row objects) on top of the driver's own
work; on PostgreSQL that was as much as the driver's share of the answer's read. The handful of
statements the worker's hot paths run (hype.answer_rows, hype.web.image_gate) are compiled once per
dialect here and run on the cursor of a DB-API connection those paths keep (KeptConnections), with
SQLAlchemy's own type conversions applied to the values that need them (JSON and timestamps on SQLite;
on psycopg the JSON parameters, wrapped for its adapter; results come converted by the driver).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable


class DirectStatement:
    """One statement for one dialect: its SQL, how to lay out its parameters, and which bound values
    and result columns need converting."""

    def __init__(self, dialect: Dialect, statement: Executable):
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ()) if compiled.positional else None
        # The statement's own literals (the 1 of ``presentations + 1``), bound once; the rest must be given.
        self.defaults = compiled.construct_params(_check=False)
        self.required = frozenset(bind.key for bind in compiled.binds.values() if bind.required)
        self.bind_processors: dict[str, Callable[[Any], Any]] = {}
        for bind in compiled.binds.values():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.bind_processors[bind.key] = processor
        self.dialect = dialect
        self.column_types = [column.type for column in getattr(statement, "selected_columns", ())]
        # Found from the first result's description: some drivers' converters depend on the type code.
        self.result_processors: list[tuple[int, Callable[[Any], Any]]] | None = None

    def params(self, **values: Any) -> Any:
        """The DB-API parameters for ``values`` (named by bindparam), converted where the type says. A
        parameter left out is an error, not a NULL: a column added to a table and forgotten here must
        not be stored empty by the hot path alone."""
        missing = self.required.difference(values)
        if missing:
            raise ValueError(f"no value for {', '.join(sorted(missing))}")
        bound = {**self.defaults, **values}
        for name, processor in self.bind_processors.items():
            if name in values:
                bound[name] = processor(bound[name])
        return tuple([bound[name] for name in self.names]) if self.names is not None else bound

    def execute(self, cursor: Any, **values: Any) -> Any:
        cursor.execute(self.sql, self.params(**values))
        return cursor

    def rows(self, cursor: Any, **values: Any) -> list[Sequence[Any]]:
        """All the rows, with the columns that need it converted."""
        rows = self.execute(cursor, **values).fetchall()
        if self.result_processors is None:
            self.result_processors = self._result_processors(cursor.description)
        if not self.result_processors or not rows:
            return rows
        converted = []
        for row in rows:
            row = list(row)
            for index, processor in self.result_processors:
                if row[index] is not None:
                    row[index] = processor(row[index])
            converted.append(row)
        return converted


    def _result_processors(self, description: Sequence[Sequence[Any]]) -> list[tuple[int, Callable[[Any], Any]]]:
        found = []
        for index, (type_, column) in enumerate(zip(self.column_types, description)):
            processor = type_.dialect_impl(self.dialect).result_processor(self.dialect, column[1])
            if processor is not None:
                found.append((index, processor))
        return found


_compiled: dict[tuple[str, str, int], DirectStatement] = {}


def direct(dialect: Dialect, statement: Executable) -> DirectStatement:
    """The statement compiled for the dialect, once per process (statements here are module constants)."""
    key = (dialect.name, dialect.driver, id(statement))
    found = _compiled.get(key)
    if found is None:
        found = _compiled[key] = DirectStatement(dialect, statement)
    return found


class KeptConnections:
    """DB-API connections checked out of the engine's pool once and kept by one hot path: a checkout
    and its return (with the pool's reset) cost about as much as the path's statements. They count
    against the pool for good (hype.serving sizes it for them). list.pop and
    list.append are atomic, so threads share the list without a lock; it holds at most as many
    connections as the path ever ran at once in this process. ``autocommit``: each statement its own
    transaction (the image gate's single UPDATE); otherwise the caller commits or rolls back."""

    def __init__(self, engine: Any, *, autocommit: bool):
        self.engine = engine
        self.autocommit = autocommit
        self.idle: list[Any] = []

    def take(self) -> Any:
        """The most recently used connection; a new one from the engine's pool (its connect events
        run) only when every one kept is busy."""
        try:
            return self.idle.pop()
        except IndexError:
            connection = self.engine.raw_connection()
            if self.autocommit:
                self.engine.dialect.set_isolation_level(connection.driver_connection, "AUTOCOMMIT")
            return connection

    def give(self, connection: Any) -> None:
        self.idle.append(connection)

    @staticmethod
    def discard(connection: Any) -> None:
        """A connection that failed is closed for good (the pool makes a fresh one in its place)."""
        try:
            connection.invalidate()
            connection.close()
        except Exception:  # noqa: BLE001
            pass
