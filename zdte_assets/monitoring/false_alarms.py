"""Recompute the false-alarm table of docs/monitoring.md: ``python -m zdte_assets.monitoring.false_alarms``.

The table is generated rather than typed so it cannot drift away from the code: change a
default in ``DriftConfig`` and the table (and the test comparing it with the document) follows.

    python -m zdte_assets.monitoring.false_alarms --markdown            # print the Markdown table
    python -m zdte_assets.monitoring.false_alarms --write docs/monitoring.md   # refresh it in place
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zdte_assets.monitoring.drift import DriftConfig, ReturnsModel, simulate_false_alarm_grid

BEGIN_MARKER = "<!-- false-alarm-table:begin -->"
END_MARKER = "<!-- false-alarm-table:end -->"

CONFIGS: dict[str, DriftConfig] = {
    "default": DriftConfig(),
    "guarded": DriftConfig.guarded(),
    "psi": DriftConfig(data_method="psi"),
}
RETURNS_MODELS: tuple[ReturnsModel, ...] = ("iid_t", "garch_t")
ACCURACIES: tuple[float, ...] = (0.55, 0.52)
_MODEL_LABEL = {"iid_t": "i.i.d. t(5)", "garch_t": "GARCH t(7)", "normal": "normal"}
#: (row label, trigger key, configs shown). The PSI variant only changes the data rule.
_ROWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("rmse_ratio", "rmse_ratio", ("default", "guarded")),
    ("accuracy_floor", "accuracy_floor", ("default", "guarded")),
    ("data_drift", "data_drift", ("default", "guarded", "psi")),
    ("data_drift, 5 lag features only", "data_drift_lag_features", ("default", "guarded", "psi")),
    ("target_drift", "target_drift", ("default", "guarded")),
    ("any (re-optimization requests)", "any", ("default", "guarded", "psi")),
)


def compute(n_sims: int = 200, n_days: int = 252, seed: int = 0) -> list[dict[str, Any]]:
    """Every (returns model, accuracy, config) cell of the table."""
    return simulate_false_alarm_grid(
        CONFIGS, RETURNS_MODELS, ACCURACIES, n_days=n_days, n_sims=n_sims, seed=seed
    )


def _columns() -> list[tuple[str, float]]:
    return [(m, a) for m in RETURNS_MODELS for a in ACCURACIES]


def table_cells(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and body: each cell is "% of days fired / firings per 252 days with cooldown"."""
    by_key = {(r["returns_model"], r["true_accuracy"], r["config"]): r["rates"] for r in rows}
    header = ["trigger", "config"] + [f"{_MODEL_LABEL[m]}, accuracy {a:.0%}" for m, a in _columns()]
    body: list[list[str]] = []
    for label, key, config_names in _ROWS:
        for name in config_names:
            cells = [label, name]
            for m, a in _columns():
                rate = by_key[(m, a, name)][key]
                cells.append(
                    f"{100 * rate['fraction_of_days']:.1f}% / {rate['firings_per_252_days']:.1f}"
                )
            body.append(cells)
    return header, body


def render_markdown(rows: Sequence[dict[str, Any]], n_sims: int, n_days: int, seed: int) -> str:
    header, body = table_cells(rows)
    cfg = CONFIGS["default"]
    lines = [
        f"Each cell: share of monitored days on which the rule fires / firings per 252 trading "
        f"days after a {cfg.cooldown_days}-day cooldown. {n_sims} simulated paths x "
        f"{n_days} monitored days, seed {seed}, no change anywhere in the data.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def render_text(rows: Sequence[dict[str, Any]]) -> str:
    header, body = table_cells(rows)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *body]) + "\n"


def replace_block(text: str, table: str) -> str:
    """``text`` with the part between the table markers replaced by ``table``."""
    start = text.find(BEGIN_MARKER)
    end = text.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"markers {BEGIN_MARKER!r} ... {END_MARKER!r} not found")
    return text[: start + len(BEGIN_MARKER)] + "\n" + table + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zdte_assets.monitoring.false_alarms",
        description="False-alarm rates of the re-optimization triggers on unchanged data.",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="print a Markdown table")
    out.add_argument("--json", action="store_true", help="print every rate as JSON")
    out.add_argument("--write", metavar="PATH", help="replace the table block in PATH")
    parser.add_argument("--n-sims", type=int, default=200)
    parser.add_argument("--n-days", type=int, default=252)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rows = compute(n_sims=args.n_sims, n_days=args.n_days, seed=args.seed)
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif args.markdown:
        sys.stdout.write(render_markdown(rows, args.n_sims, args.n_days, args.seed))
    elif args.write:
        path = Path(args.write)
        table = render_markdown(rows, args.n_sims, args.n_days, args.seed)
        path.write_text(replace_block(path.read_text(encoding="utf-8"), table), encoding="utf-8")
        sys.stdout.write(f"updated {path}\n")
    else:
        sys.stdout.write(render_text(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
