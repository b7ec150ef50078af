"""Great Expectations checkpoints that gate every move.

A move stages its batch, then asks the gate twice inside one database
transaction: before the merge (is the staged batch fit to write?) and after it
(does the target reconcile with the source?). The checkpoints read the move's
uncommitted rows through the move's own connection (see
``connections.SharedConnection``), so a failed gate rolls the whole move back:
nothing of it is ever visible in the Xiaomi tables.

The suites are JSON files in ``expectations/``, in Great Expectations' own suite
format, so that a data engineer reads and edits them without opening Python.
Thresholds that come from the plan are written as suite parameters
(``{"$PARAMETER": ...}``) and filled in from the plan when a suite is loaded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poco_migration import data_docs
from poco_migration.config_files import PROJECT
from poco_migration.connections import SharedConnection


def expectations_dir() -> Path:
    return Path(os.environ.get("POCO_MIGRATION_EXPECTATIONS", PROJECT / "expectations"))


def data_docs_dir() -> Path | None:
    """Where Data Docs pages go, as an absolute path (GX gives its pages' URLs absolute, and the
    index lists those under it); ``POCO_MIGRATION_DATA_DOCS=off`` builds none."""
    configured = os.environ.get("POCO_MIGRATION_DATA_DOCS", str(PROJECT / "var" / "data_docs"))
    return None if configured == "off" else Path(configured).resolve()


class SuiteError(ValueError):
    """An expectation suite file that is missing or that GX cannot read entirely."""


@dataclass(frozen=True)
class Failure:
    suite: str
    expectation: str
    column: str | None
    observed: Any

    def __str__(self) -> str:
        column = f"({self.column})" if self.column else ""
        return f"{self.suite}: {self.expectation}{column} observed {self.observed}"


@dataclass
class CheckpointOutcome:
    stage: str
    success: bool
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    data_docs: str | None = None
    # Wall-clock seconds of the checkpoint (GX set-up, its queries, Data Docs): the benchmark's gate time.
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)


@cache
def suite_definition(name: str) -> dict[str, Any]:
    path = expectations_dir() / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"expectation suite {name!r}: cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"expectation suite {name!r}: {path}:{exc.lineno}: {exc.msg}") from exc


def _resolved(value: Any, parameters: dict[str, Any], suite: str) -> Any:
    """``{"$PARAMETER": key}`` replaced by the plan's value, so that each suite is validated
    and rendered in Data Docs with the concrete threshold it was held to."""
    if isinstance(value, dict):
        if set(value) == {"$PARAMETER"}:
            if value["$PARAMETER"] not in parameters:
                raise SuiteError(f"expectation suite {suite!r}: no value for parameter {value['$PARAMETER']!r}")
            return parameters[value["$PARAMETER"]]
        return {key: _resolved(item, parameters, suite) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, parameters, suite) for item in value]
    return value


def load_suite(name: str, parameters: dict[str, Any] | None = None) -> Any:
    """The suite as a GX object, its parameters filled in from ``parameters``; refuses a
    file of which GX would silently drop a part."""
    import great_expectations as gx

    definition = suite_definition(name)
    expectations = definition.get("expectations", [])
    if parameters is not None:
        expectations = _resolved(expectations, parameters, name)
    suite = gx.ExpectationSuite(name=name, expectations=expectations, meta=definition.get("meta"))
    if len(suite.expectations) != len(definition.get("expectations", [])):
        raise SuiteError(f"expectation suite {name!r}: some expectations are not valid GX configurations")
    return suite


def _observed(result: dict[str, Any]) -> Any:
    if "observed_value" in result:
        return result["observed_value"]
    return {
        "unexpected_count": result.get("unexpected_count"),
        "unexpected_sample": result.get("partial_unexpected_list", [])[:5],
    }


def comparable(query: sa.Select, dialect: str) -> sa.Select:
    """The query's rows with every timestamp in one spelling of its instant, on SQLite.

    SQLite keeps timestamps as text, and the contract allows ``...:04`` and ``...:04.000000``
    for the same instant: compared as text, the first is before the second. A gate must
    judge instants (and dates as dates), as the move does after parsing them, so each
    timestamp is rewritten ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy's own spelling) and
    each date ``YYYY-MM-DD`` before GX sees it. PostgreSQL has real types: nothing to do."""
    if dialect != "sqlite":
        return query
    rows = query.subquery()
    return sa.select(*(_one_spelling(column).label(column.name) for column in rows.c))


def _one_spelling(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    if isinstance(column.type, sa.DateTime):
        text = sa.type_coerce(column, sa.Text)
        dot = sa.func.instr(text, ".")
        fraction = sa.case(
            (dot > 0, sa.func.substr(sa.func.substr(text, dot + 1, 6) + "000000", 1, 6)), else_=sa.literal("000000")
        )
        return sa.type_coerce(sa.func.strftime("%Y-%m-%d %H:%M:%S", text), sa.Text) + "." + fraction
    if isinstance(column.type, sa.Date):
        return sa.type_coerce(sa.func.date(sa.type_coerce(column, sa.Text)), sa.Text)
    return column


class Gatekeeper:
    """The GX context of one move, bound to that move's shared connection."""

    def __init__(self, shared: SharedConnection, label: str, source_url: sa.URL | None = None) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx

        self.shared = shared
        self.label = label
        self.temporary = 0
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.docs = data_docs_dir()
        if self.docs is not None:
            data_docs.add_site(self.context, self.docs)
        kwargs = dict(shared.engine_kwargs)
        if shared.url.get_backend_name() != "sqlite":  # GX pins SQLite to a StaticPool itself
            kwargs["poolclass"] = sa.pool.StaticPool
        with shared.lent():
            self.datasources = {"target": self._add("mi_target", shared.url, kwargs)}
        if source_url is not None:
            self.datasources["source"] = self._add("poco_source", source_url, {})

    def _add(self, name: str, url: sa.URL, kwargs: dict[str, Any]) -> Any:
        sources = self.context.data_sources
        add = sources.add_sqlite if url.get_backend_name() == "sqlite" else sources.add_postgres
        # The generated stubs (sources.pyi) omit SQLDatasource's ``kwargs`` field (create_engine's kwargs).
        return add(name=name, connection_string=url.render_as_string(hide_password=False), kwargs=kwargs)  # type: ignore[call-arg]

    def _query(self, query: sa.Select, datasource: Any) -> str:
        """SQL for a GX query asset: compiled by SQLAlchemy, values quoted by its dialect."""
        dialect = datasource.get_engine().dialect
        return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    def _asset(self, name: str, rows: sa.Select | sa.Table, datasource: Any) -> Any:
        """A table asset for rows computed into a table, a query asset for a query. GX finds
        a query asset's columns by running the whole query (and fetching every row): a second
        read of the rows, and memory that grows with them; a table it reads ``LIMIT 1`` of.
        GX tries a table asset's connection as it adds it: lent, so that it cannot end the
        move's transaction."""
        if isinstance(rows, sa.Table):
            with self.shared.lent():
                return datasource.add_table_asset(name=name, table_name=rows.name)
        return datasource.add_query_asset(name=name, query=self._query(rows, datasource))

    def _materialised(self, query: sa.Select, datasource: Any) -> sa.Table:
        """The query's rows, computed once into a temporary table of the move's own transaction.

        GX runs a query asset's SQL again for each metric (row count, each expectation's
        unexpected count and sample): the reconciliation's query, several EXISTS per row, cost
        as much as the merge each time. GX then reads the same rows from the table."""
        self.temporary += 1
        create = query.into(f"poco_gate_rows_{self.temporary}", temporary=True)
        with self.shared.lent(), datasource.get_engine().connect() as conn:
            conn.execute(create)
        return create.table

    def check(
        self,
        stage: str,
        validations: Sequence[tuple[str, sa.Select]],
        parameters: dict[str, Any],
        database: str = "target",
    ) -> CheckpointOutcome:
        """Run one checkpoint: each (suite, query) pair validates the query's rows."""
        import great_expectations as gx
        from great_expectations.core.run_identifier import RunIdentifier

        began = time.perf_counter()
        datasource = self.datasources[database]
        definitions = []
        dialect = datasource.get_engine().dialect.name
        validations = [(suite, comparable(query, dialect)) for suite, query in validations]
        temporary = [self._materialised(query, datasource) for _, query in validations] if database == "target" else []
        for n, (suite_name, query) in enumerate(validations):
            asset = self._asset(f"{stage}.{suite_name}", temporary[n] if temporary else query, datasource)
            suite = self.context.suites.add(load_suite(suite_name, parameters))
            definitions.append(
                self.context.validation_definitions.add(
                    gx.ValidationDefinition(
                        name=f"{self.label}.{stage}.{suite_name}",
                        data=asset.add_batch_definition_whole_table("batch"),
                        suite=suite,
                    )
                )
            )
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(name=f"{self.label}.{stage}", validation_definitions=definitions)
        )
        with self.shared.lent():
            # Named for the move: its pages sit under its label in the site all moves share.
            result = checkpoint.run(run_id=RunIdentifier(run_name=self.label))
            with datasource.get_engine().connect() as conn:
                for table in temporary:
                    conn.execute(sa.schema.DropTable(table))
        page = data_docs.publish(self.context, self.docs, result) if self.docs else None
        outcome = self._outcome(stage, result, page)
        outcome.seconds = time.perf_counter() - began
        return outcome

    def _outcome(self, stage: str, result: Any, page: str | None) -> CheckpointOutcome:
        failures: list[Failure] = []
        evaluated = 0
        for validation in result.run_results.values():
            suite = validation.suite_name
            for item in validation.results:
                evaluated += 1
                if item.exception_info and item.exception_info.get("raised_exception"):
                    failures.append(
                        Failure(suite, item.expectation_config.type, None, item.exception_info["exception_message"])
                    )
                elif not item.success:
                    config = item.expectation_config
                    failures.append(Failure(suite, config.type, config.kwargs.get("column"), _observed(item.result)))
        return CheckpointOutcome(stage, bool(result.success) and not failures, evaluated, failures, page)

    def close(self) -> None:
        """Drop GX's engines without letting them close the move's connection."""
        with self.shared.lent():
            for datasource in self.datasources.values():
                datasource.get_engine().dispose()
