"""The daily report as one self-contained HTML page: plots, each day's decision, calibration, drift.

People look at a page rather than read `report.md`, and forward it by mail or open it on a
laptop without network: so the page carries everything inside itself (PNG plots as base64 data
URIs, inline CSS, one inline script) and loads nothing from anywhere. It is built from the same
per-day frame as the replay's report (`replay.collect_days`) and the same plot functions
(`report.write_plots`, `plots`), so `zdte report` on stored assets and `zdte replay` show the
same figures. All text goes through Jinja's autoescaping: reasons and tickers come from storage.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zdte_assets.core.errors import ZdteError

if TYPE_CHECKING:
    import polars as pl

    from zdte_assets.core.records import DriftReport
    from zdte_assets.storage.store import Store

#: Shown where a value does not apply (a NO_TRADE day's strike) or cannot be computed.
MISSING = "—"

#: The page's plots in order: (file name, alt text). `report.write_plots` makes the first five
#: (as the replay writes them); the last two are the page's own views over the trading days.
PLOTS: tuple[tuple[str, str], ...] = (
    ("predicted_and_realized.png", "Predicted and realized return over the trading days"),
    ("cumulative_pnl.png", "Cumulative P&L of the recommended trades"),
    ("pit_histogram.png", "Calibration: PIT histogram"),
    ("drift_statistics.png", "Drift statistics against their thresholds, re-optimizations marked"),
    ("drift_timeline.png", "Drift triggers that fired, re-optimizations marked"),
    ("predicted_vs_realized.png", "Predicted against realized return, one dot per day"),
    ("rolling_accuracy.png", "Rolling directional accuracy"),
)


class ReportError(ZdteError, ValueError):
    """A report that cannot be made: no stored day in the range, an inverted range."""


@dataclass(frozen=True)
class Plot:
    name: str
    alt: str
    data_uri: str


# --- formatting: rounded, no "-0.00", a dash for what does not exist ---------------------------


def number(x: Any, fmt: str = ".2f") -> str:
    """`x` formatted with `fmt`, a dash for None/NaN; a value that rounds to zero loses its
    sign, because "-0.00" reads as a loss that did not happen."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return MISSING
    text = format(x, fmt)
    if not re.search(r"[1-9]", text):
        text = text.lstrip("+-")
    return text


def percent(x: Any, digits: int = 2, signed: bool = False) -> str:
    """A fraction as a percentage (0.0123 -> "1.23%"), signed for returns."""
    return number(x, f"{'+' if signed else ''}.{digits}%")


# --- what is stored -----------------------------------------------------------------------------


def _stems(store: Store, ticker: str, asset: str) -> set[dt.date]:
    from zdte_assets.storage.keys import object_key

    prefix = object_key([ticker, asset], "", "json").removesuffix(".json")
    out = set()
    for key in store.list_keys(prefix):
        name = key.rpartition("/")[2]
        if name.endswith(".json"):
            try:
                out.add(dt.date.fromisoformat(name.removesuffix(".json")))
            except ValueError:
                continue
    return out


def stored_days(
    store: Store, ticker: str, start: dt.date | None = None, end: dt.date | None = None
) -> list[dt.date]:
    """Days with a stored prediction, outcome and drift report (a day is only complete in the
    evening), inside `start`..`end` when given; `ReportError` when there are none."""
    if start and end and end < start:
        raise ReportError(f"--end {end} is before --start {start}")
    days = (
        _stems(store, ticker, "prediction")
        & _stems(store, ticker, "prediction_outcome")
        & _stems(store, ticker, "drift_report")
    )
    chosen = sorted(d for d in days if (not start or d >= start) and (not end or d <= end))
    if not chosen:
        span = f"{min(days)}..{max(days)}" if days else "none"
        wanted = (
            f" in {start}..{end}"
            if start and end
            else f" from {start}"
            if start
            else f" up to {end}"
            if end
            else ""
        )
        raise ReportError(
            f"no stored day of {ticker}{wanted} at {store.url(ticker)} (stored: {span})"
        )
    return chosen


def reoptimization_days(store: Store, ticker: str, days: list[dt.date]) -> list[dt.date]:
    """Those of `days` whose drift report triggered a re-optimization: the `as_of` of a stored
    study version that the weekly schedule did not make. The sensor files it under the week of
    the next session (see `sensors.evaluate_drift`), so only those weeks are read."""
    from zdte_assets.core import calendar
    from zdte_assets.model.versions import week_versions

    weeks = {calendar.week_start(calendar.next_trading_day(d)).isoformat() for d in days}
    found = {
        v.as_of
        for week in sorted(weeks)
        for v in week_versions(store, ticker, week)
        if v.trigger != "schedule"
    }
    return sorted(found & set(days))


def drift_reports(store: Store, ticker: str, days: list[dt.date]) -> list[DriftReport]:
    from zdte_assets.monitoring.report import load_drift_report

    return [load_drift_report(store, ticker, day) for day in days]


# --- plots --------------------------------------------------------------------------------------


def _trigger_panels(reports: list[DriftReport]) -> dict[str, tuple[list[float], float]]:
    """Each trigger's daily value and its latest threshold, in the report's trigger order."""
    names: list[str] = []
    for rep in reports:
        names += [t.name for t in rep.triggers if t.name not in names]
    panels: dict[str, tuple[list[float], float]] = {}
    for name in names:
        values, threshold = [], math.nan
        for rep in reports:
            trig = next((t for t in rep.triggers if t.name == name), None)
            values.append(math.nan if trig is None or trig.value is None else trig.value)
            threshold = trig.threshold if trig is not None else threshold
        panels[name] = (values, threshold)
    return panels


def render_plots(days: pl.DataFrame, reports: list[DriftReport]) -> list[Plot]:
    """The page's PNGs as data URIs, drawn in a temporary folder by the replay's plot code."""
    from zdte_assets.apps import plots, report

    dates = days["date"].to_list()
    reopt = days.filter(days["reoptimized"])["date"].to_list()
    pit_counts = report.calibration_metrics(days)["pit_counts"]
    with tempfile.TemporaryDirectory(prefix="zdte-report-") as tmp:
        out = Path(tmp)
        report.write_plots(days, out, reopt, pit_counts)
        plots.line_chart(
            dates,
            {
                "predicted": days["predicted_return"].to_list(),
                "realized": days["realized_return"].to_list(),
            },
            out / "predicted_and_realized.png",
            "open-to-close log return",
            "Predicted and realized return (red lines: re-optimizations)",
            markers=reopt,
        )
        plots.threshold_panels(
            dates,
            _trigger_panels(reports),
            out / "drift_statistics.png",
            "Drift statistics (dashed: threshold; red lines: re-optimizations)",
            markers=reopt,
        )
        return [
            Plot(
                name,
                alt,
                "data:image/png;base64," + base64.b64encode((out / name).read_bytes()).decode(),
            )
            for name, alt in PLOTS
        ]


# --- tables -------------------------------------------------------------------------------------


def decision_rows(days: pl.DataFrame) -> list[dict[str, str]]:
    """One row per day as shown; a NO_TRADE day has no strike or premium to act on, so those
    cells are a dash rather than numbers that look like a recommendation."""
    rows = []
    for r in days.iter_rows(named=True):
        trade = r["action"] != "NO_TRADE"
        rows.append(
            {
                "date": r["date"].isoformat(),
                "action": r["action"],
                "strike": number(r["strike"], "g") if trade else MISSING,
                "premium": number(r["premium"], ".2f") if trade else MISSING,
                "predicted": percent(r["predicted_return"], signed=True),
                "realized": percent(r["realized_return"], signed=True),
                "pnl": number(r["pnl"], "+.2f"),
                "reason": r["reason"] or "",
                "css": "trade" if trade else "no-trade",
            }
        )
    return rows


def calibration_rows(cal: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, what a calibrated forecast would show)."""
    n = cal["n"]
    return [
        ("coverage of the central 50% interval", percent(cal["coverage_50"], 1), "50%"),
        ("coverage of the central 90% interval", percent(cal["coverage_90"], 1), "90%"),
        ("mean squared standardized error", number(cal["z2_mean"], ".3g"), "1"),
        ("Brier score of P(close > open)", number(cal["brier"], ".4f"), "below the base rate's"),
        ("Brier score of the trailing base rate", number(cal["brier_base"], ".4f"), ""),
        ("mean log score", number(cal["log_score"], ".3f"), "higher is better"),
        (
            "PIT counts in ten bins",
            " ".join(str(c) for c in cal["pit_counts"]),
            f"{number(n / 10, '.3g')} in each" if n else MISSING,
        ),
    ]


def drift_rows(
    reports: list[DriftReport], reopt: set[dt.date]
) -> tuple[list[str], list[dict[str, Any]]]:
    """The trigger names (columns) and one row per day: each trigger's value, fired or not."""
    names = list(_trigger_panels(reports))
    rows = []
    for rep in reports:
        by_name = {t.name: t for t in rep.triggers}
        cells = []
        for name in names:
            t = by_name.get(name)
            value = MISSING if t is None else number(t.value, ".3g")
            threshold = MISSING if t is None else number(t.threshold, ".3g")
            cells.append({"text": f"{value} / {threshold}", "fired": bool(t and t.fired)})
        rows.append(
            {
                "date": rep.date.isoformat(),
                "model": rep.model_version,
                "cells": cells,
                "reoptimized": "yes" if rep.date in reopt else "",
            }
        )
    return names, rows


def headline(days: pl.DataFrame) -> list[tuple[str, str]]:
    """The figures at the top of the page."""
    from zdte_assets.apps import report

    m, t = report.compute_metrics(days), report.trading_summary(days)
    return [
        ("trading days", str(days.height)),
        ("trades (calls / puts)", f"{t['trades']} ({t['calls']} / {t['puts']})"),
        ("P&L (USD)", number(t["pnl_total"], "+.2f")),
        ("expected value at the open (USD)", number(t["expected_value_total"], "+.2f")),
        ("hit rate of the trades", percent(t["hit_rate"], 1)),
        ("RMSE ratio model / naive", number(m["rmse_ratio"], ".3f")),
        ("directional accuracy", percent(m["model"]["directional_accuracy"], 1)),
        ("re-optimizations", str(int(days["reoptimized"].sum()))),
    ]


# --- the page -----------------------------------------------------------------------------------

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zdte report {{ ticker }} {{ first }} to {{ last }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px;
       color: #222; background: #fff; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.cards { display: flex; flex-wrap: wrap; gap: .6em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .5em .8em; min-width: 9em; }
.card .v { font-size: 1.3em; font-weight: 600; } .card .k { font-size: .8em; color: #555; }
figure { margin: 1em 0; } figcaption { font-size: .9em; color: #555; }
img.plot { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
td.date { white-space: nowrap; }
tr.no-trade td { color: #777; } td.fired { color: #b00; font-weight: 600; }
</style>
</head>
<body data-plots="pending">
<h1>zdte report: {{ ticker }}, {{ first }} to {{ last }}</h1>
<p>{{ days|length }} trading days read from {{ source }}. Generated {{ generated }}.</p>
<div class="cards">
{% for k, v in cards %}<div class="card"><div class="v">{{ v }}</div><div class="k">{{ k }}</div></div>
{% endfor %}</div>
<h2>Plots</h2>
{% for p in plots %}<figure><img class="plot" src="{{ p.data_uri }}" alt="{{ p.alt }}" data-name="{{ p.name }}">
<figcaption>{{ p.alt }}</figcaption></figure>
{% endfor %}
<h2>Decisions</h2>
<table id="decisions">
<tr><th class="text">date</th><th class="text">action</th><th>strike</th><th>premium</th>
<th>predicted return</th><th>realized return</th><th>P&amp;L (USD)</th><th class="text">reason</th></tr>
{% for r in days %}<tr class="{{ r.css }}"><td class="text date">{{ r.date }}</td><td class="text">{{ r.action }}</td>
<td>{{ r.strike }}</td><td>{{ r.premium }}</td><td>{{ r.predicted }}</td><td>{{ r.realized }}</td>
<td>{{ r.pnl }}</td><td class="text">{{ r.reason }}</td></tr>
{% endfor %}</table>
<h2>Calibration</h2>
<table id="calibration">
<tr><th class="text">figure</th><th>value</th><th class="text">when calibrated</th></tr>
{% for k, v, ideal in calibration %}<tr><td class="text">{{ k }}</td><td>{{ v }}</td><td class="text">{{ ideal }}</td></tr>
{% endfor %}</table>
<h2>Drift timeline</h2>
<p>Each trigger's statistic / its threshold; fired triggers in red.</p>
<table id="drift">
<tr><th class="text">date</th><th class="text">model</th>{% for n in trigger_names %}<th>{{ n }}</th>{% endfor %}<th>re-optimized</th></tr>
{% for r in drift %}<tr><td class="text date">{{ r.date }}</td><td class="text">{{ r.model }}</td>
{% for c in r.cells %}<td{% if c.fired %} class="fired"{% endif %}>{{ c.text }}</td>{% endfor %}<td>{{ r.reoptimized }}</td></tr>
{% endfor %}</table>
<script>
window.addEventListener("load", function () {
  document.querySelectorAll("img.plot").forEach(function (img) {
    img.setAttribute("data-loaded", img.complete && img.naturalWidth > 0 ? "yes" : "no");
    img.setAttribute("data-natural-width", String(img.naturalWidth));
    img.setAttribute("data-natural-height", String(img.naturalHeight));
  });
  document.body.setAttribute("data-height", String(document.documentElement.scrollHeight));
  document.body.setAttribute("data-plots", "ready");
});
</script>
</body>
</html>
"""


def page(
    ticker: str, days: pl.DataFrame, reports: list[DriftReport], source: str, plots: list[Plot]
) -> str:
    """The HTML text; every value is escaped by the template (autoescape)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    from zdte_assets.apps import report

    reopt = set(days.filter(days["reoptimized"])["date"].to_list())
    names, drift = drift_rows(reports, reopt)
    return env.from_string(TEMPLATE).render(
        ticker=ticker,
        first=days["date"][0].isoformat(),
        last=days["date"][-1].isoformat(),
        source=source,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cards=headline(days),
        plots=plots,
        days=decision_rows(days),
        calibration=calibration_rows(report.calibration_metrics(days)),
        trigger_names=names,
        drift=drift,
    )


def write_page(
    path: Path, ticker: str, days: pl.DataFrame, reports: list[DriftReport], source: str
) -> Path:
    """Render the plots and the page for `days` and write it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(ticker, days, reports, source, render_plots(days, reports)))
    return path


def write_report(
    storage_url: str,
    ticker: str,
    output: Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Path:
    """`zdte report`: the page of the stored days of `ticker` in `start`..`end` (all by default)."""
    from zdte_assets.apps.replay import collect_days
    from zdte_assets.storage import store as storage

    ticker = ticker.upper()
    store = storage.store_from_url(storage_url)
    days = stored_days(store, ticker, start, end)
    frame = collect_days(store, ticker, days, reoptimization_days(store, ticker, days))
    return write_page(output, ticker, frame, drift_reports(store, ticker, days), store.url(ticker))


def write_replay_page(output: Path, result: dict[str, Any]) -> Path:
    """The replay's `report.html`, from the days frame it wrote next to `report.md`."""
    import polars as pl

    from zdte_assets.storage import store as storage

    ticker = str(result["ticker"])
    frame = pl.read_parquet(output / "predictions.parquet")
    store = storage.store_from_url(str(result["storage"]))
    reports = drift_reports(store, ticker, frame["date"].to_list())
    return write_page(
        output / "report.html", ticker, frame, reports, f"replay of {result['source']}"
    )
