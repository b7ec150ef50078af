"""The migration plan: waves, cutovers, conversion rates and the gate threshold.

The plan is a YAML file (``config/plan.yaml`` unless ``POCO_MIGRATION_PLAN`` names
another) because the people who run the migration change dates, not code. It is
validated when loaded, and every error names the file, the line and the field, so
that a bad edit fails the DAG parse with a message that says where to look.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import asdict, dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from poco_migration.config_files import PROJECT, read_yaml

DEFAULT_PLAN = PROJECT / "config" / "plan.yaml"
GLOBAL_MARKET = "GL"
MARKET_CODE = re.compile(r"^[A-Z]{2}$")


class PlanError(ValueError):
    """A plan file that cannot be used, with the place of the problem in the message."""


@dataclass(frozen=True)
class MarketPlan:
    """One market's calendar: syncs run from ``wave_start`` until the ``cutover`` freeze."""

    market: str
    wave: str
    wave_start: dt.date
    cutover: dt.date
    conversion_rate: Decimal = Decimal(1)

    def syncs_on(self, day: dt.date) -> bool:
        """Whether the daily sync of ``day`` moves this market (the cutover does its final sync)."""
        return self.wave_start <= day < self.cutover


@dataclass(frozen=True)
class Plan:
    shutdown: dt.date
    max_quarantine_ratio: float
    markets: tuple[MarketPlan, ...]

    @property
    def start(self) -> dt.date:
        return min(m.wave_start for m in self.markets)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(m.market for m in self.markets)

    def market(self, code: str) -> MarketPlan:
        for plan in self.markets:
            if plan.market == code:
                return plan
        raise PlanError(f"market {code!r} is not in the plan (markets: {', '.join(self.codes)})")

    def syncing_on(self, day: dt.date) -> tuple[str, ...]:
        """The markets that the daily sync of ``day`` moves, in plan order."""
        return tuple(m.market for m in self.markets if m.syncs_on(day))

    def cutovers(self) -> tuple[MarketPlan, ...]:
        """Markets in cutover order (date, then plan order): the global site is last."""
        return tuple(sorted(self.markets, key=lambda m: m.cutover))

    def shifted(self, days: int) -> Plan:
        delta = dt.timedelta(days=days)
        return replace(
            self,
            shutdown=self.shutdown + delta,
            markets=tuple(replace(m, wave_start=m.wave_start + delta, cutover=m.cutover + delta) for m in self.markets),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "shutdown": self.shutdown.isoformat(),
            "max_quarantine_ratio": self.max_quarantine_ratio,
            "markets": [
                {
                    **asdict(m),
                    "wave_start": m.wave_start.isoformat(),
                    "cutover": m.cutover.isoformat(),
                    "conversion_rate": _number(m.conversion_rate),
                }
                for m in self.markets
            ],
        }


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# The conversion rates a plan may set: exact decimals, small enough that a 32-bit balance
# times the rate's numerator stays far inside 64-bit integers.
MAX_RATE, RATE_STEP = Decimal(1000), Decimal("0.000001")


@cache
def load_plan(path: str | os.PathLike[str] | None = None, shift_days: int | None = None) -> Plan:
    """Load and validate the plan; cached, because every DAG file of a parse asks for it."""
    source = Path(path or os.environ.get("POCO_MIGRATION_PLAN") or DEFAULT_PLAN)
    root = read_yaml(source, "plan", PlanError, yaml.compose)
    plan = _Reader(source).plan(root)
    env_shift = os.environ.get("POCO_MIGRATION_SHIFT_DAYS")
    days = shift_days if shift_days is not None else int(env_shift) if env_shift else plan[1]
    return plan[0].shifted(days) if days else plan[0]


class _Reader:
    """Walks the YAML node tree so that each error can cite the line it comes from."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, node: yaml.Node | None, field: str, problem: str) -> PlanError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return PlanError(f"{self.source}{line}: {field}: {problem}")

    def mapping(self, node: yaml.Node | None, field: str, allowed: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field, "expected a mapping")
        items = {key.value: value for key, value in node.value}
        for key, _ in node.value:
            if key.value not in allowed:
                raise self.fail(key, f"{field}.{key.value}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
        return items

    def required(self, items: dict[str, yaml.Node], parent: yaml.Node | None, field: str, name: str) -> yaml.Node:
        if name not in items:
            raise self.fail(parent, f"{field}.{name}", "missing")
        return items[name]

    def date(self, node: yaml.Node, field: str) -> dt.date:
        try:
            return dt.date.fromisoformat(str(node.value))
        except ValueError as exc:
            raise self.fail(node, field, f"{node.value!r} is not a date (YYYY-MM-DD)") from exc

    def decimal(self, node: yaml.Node, field: str) -> Decimal:
        try:
            value = Decimal(str(node.value))
        except InvalidOperation as exc:
            raise self.fail(node, field, f"{node.value!r} is not a number") from exc
        if not value.is_finite():
            raise self.fail(node, field, f"{node.value!r} is not a finite number")
        return value

    def plan(self, root: yaml.Node | None) -> tuple[Plan, int]:
        top = self.mapping(root, "plan", {"shutdown", "max_quarantine_ratio", "shift_days", "waves"})
        shutdown = self.date(self.required(top, root, "plan", "shutdown"), "shutdown")
        ratio_node = top.get("max_quarantine_ratio")
        ratio = self.decimal(ratio_node, "max_quarantine_ratio") if ratio_node else Decimal("0.01")
        if not 0 <= ratio < 1:
            raise self.fail(ratio_node, "max_quarantine_ratio", f"{ratio} is not in [0, 1)")
        shift_node = top.get("shift_days")
        shift = self.decimal(shift_node, "shift_days") if shift_node else Decimal(0)
        if shift != shift.to_integral_value():
            raise self.fail(shift_node, "shift_days", "must be a whole number of days")
        waves = self.required(top, root, "plan", "waves")
        if not isinstance(waves, yaml.SequenceNode) or not waves.value:
            raise self.fail(waves, "waves", "expected a non-empty list of waves")
        markets = [m for i, wave in enumerate(waves.value) for m in self.wave(wave, f"waves[{i}]", shutdown)]
        self.check_markets(markets, shutdown, root)
        return Plan(shutdown, float(ratio), tuple(m for m, _ in markets)), int(shift)

    def wave(self, node: yaml.Node, field: str, shutdown: dt.date) -> list[tuple[MarketPlan, yaml.Node]]:
        items = self.mapping(node, field, {"name", "start", "markets"})
        name = str(self.required(items, node, field, "name").value)
        start = self.date(self.required(items, node, field, "start"), f"{field}.start")
        listed = self.required(items, node, field, "markets")
        if not isinstance(listed, yaml.SequenceNode) or not listed.value:
            raise self.fail(listed, f"{field}.markets", "expected a non-empty list of markets")
        return [self.market(m, f"{field}.markets[{i}]", name, start, shutdown) for i, m in enumerate(listed.value)]

    def market(
        self, node: yaml.Node, field: str, wave: str, start: dt.date, shutdown: dt.date
    ) -> tuple[MarketPlan, yaml.Node]:
        items = self.mapping(node, field, {"market", "cutover", "conversion_rate"})
        code_node = self.required(items, node, field, "market")
        if not MARKET_CODE.match(str(code_node.value)):
            raise self.fail(code_node, f"{field}.market", f"{code_node.value!r} is not an upper-case two-letter code")
        cutover_node = self.required(items, node, field, "cutover")
        cutover = self.date(cutover_node, f"{field}.cutover")
        if not start <= cutover <= shutdown:
            raise self.fail(
                cutover_node,
                f"{field}.cutover",
                f"{cutover} is not between the wave start {start} and the shutdown {shutdown}",
            )
        rate_node = items.get("conversion_rate")
        rate = self.decimal(rate_node, f"{field}.conversion_rate") if rate_node else Decimal(1)
        if rate <= 0:
            raise self.fail(rate_node, f"{field}.conversion_rate", f"{rate} must be greater than 0")
        if rate > MAX_RATE or rate != rate.quantize(RATE_STEP):
            # The gates recompute credits in 64-bit integers (balance x the rate's exact fraction).
            exponent = RATE_STEP.as_tuple().exponent
            assert isinstance(exponent, int)  # a finite Decimal's exponent ('n', 'N', 'F': NaN and infinities)
            problem = f"{rate} must be at most {MAX_RATE}, with at most {-exponent} decimals"
            raise self.fail(rate_node, f"{field}.conversion_rate", problem)
        return MarketPlan(str(code_node.value), wave, start, cutover, rate), code_node

    def check_markets(
        self, markets: list[tuple[MarketPlan, yaml.Node]], shutdown: dt.date, root: yaml.Node | None
    ) -> None:
        seen: set[str] = set()
        for plan, node in markets:
            if plan.market in seen:
                raise self.fail(node, "market", f"{plan.market} is planned twice")
            seen.add(plan.market)
        global_site = next((p for p, _ in markets if p.market == GLOBAL_MARKET), None)
        if global_site is None:
            raise self.fail(root, "waves", f"the global site {GLOBAL_MARKET} is missing")
        if global_site.cutover != shutdown:
            raise self.fail(
                root, f"{GLOBAL_MARKET}.cutover", f"the global site must cut over on the shutdown {shutdown}"
            )
        for plan, node in markets:
            if plan.market != GLOBAL_MARKET and plan.cutover >= shutdown:
                raise self.fail(node, f"{plan.market}.cutover", "only the global site cuts over on the shutdown day")
