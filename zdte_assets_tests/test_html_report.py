"""The HTML report in a real headless browser: every plot decodes, the page is not blank, the
table says what each day decided; and `zdte report` as a user runs it."""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib import image as mpimg

from zdte_assets.apps import html_report
from zdte_assets_tests.conftest import Replayed, service_unavailable
from zdte_assets_tests.test_cli import NOT_PREDICTED, one_line, zdte

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
#: A pixel counts as ink when a channel differs from the white page by more than what colour
#: management may shift (a few steps of 255); PNG plots are drawn on white as the page is.
INK = 8 / 255
WIDTH = 1280


def chromium() -> str:
    for name in CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    service_unavailable("chromium is not installed (apt-get install chromium)")


def browse(path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--virtual-time-budget=10000",
            *flags,
            path.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def ink(pixels: np.ndarray) -> int:
    """Pixels that are not the page's white."""
    rgb = pixels[..., :3].astype(np.float64)
    if rgb.max() > 1.0:  # 8-bit values
        rgb = rgb / 255.0
    return int(np.count_nonzero((1.0 - rgb).max(axis=-1) > INK))


def attrs(tag: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}


@pytest.fixture(scope="module")
def page(replayed: Replayed) -> Path:
    return replayed.output / "report.html"


@pytest.fixture(scope="module")
def dom(page: Path) -> str:
    proc = browse(page, "--dump-dom")
    assert proc.returncode == 0, proc.stderr
    assert 'data-plots="ready"' in proc.stdout, "the page's load handler did not run"
    return proc.stdout


def plot_tags(text: str) -> list[dict[str, str]]:
    return [attrs(t) for t in re.findall(r"<img [^>]*>", text) if 'class="plot"' in t]


def test_every_plot_is_embedded_and_decoded_by_the_browser(dom: str, page: Path) -> None:
    imgs = plot_tags(dom)
    assert [i["data-name"] for i in imgs] == [name for name, _ in html_report.PLOTS]
    for img in imgs:
        assert img["src"].startswith("data:image/png;base64,"), img["data-name"]
        assert img["data-loaded"] == "yes", img["data-name"]
        assert int(img["data-natural-width"]) > 0, img["data-name"]
        assert int(img["data-natural-height"]) > 0, img["data-name"]
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page.read_text())


def test_the_screenshot_shows_at_least_the_ink_of_the_plots(
    dom: str, page: Path, tmp_path: Path
) -> None:
    """A blank page, or one with broken images, has (almost) no ink; the page draws every plot
    at its own size on white, so it must show at least as many inked pixels as the plots
    carry, text and tables adding more."""
    height = int(attrs(re.search(r"<body [^>]*>", dom).group(0))["data-height"])  # type: ignore[union-attr]
    shot = tmp_path / "shot.png"
    proc = browse(page, f"--screenshot={shot}", f"--window-size={WIDTH},{height}")
    assert proc.returncode == 0 and shot.exists(), proc.stderr
    pixels = mpimg.imread(shot)
    assert pixels.shape[1] == WIDTH
    plots_ink = 0
    for img in plot_tags(dom):
        png = base64.b64decode(img["src"].partition(",")[2])
        decoded = mpimg.imread(io.BytesIO(png), format="png")
        assert decoded.shape[1] == int(img["data-natural-width"])
        assert decoded.shape[1] <= WIDTH  # drawn at its own size, not scaled down
        plots_ink += ink(decoded)
    assert plots_ink > 0
    assert ink(pixels) >= plots_ink
    assert float(pixels[..., :3].std()) > 0.0


def test_the_table_shows_each_day_and_no_strike_on_a_no_trade_day(
    replayed: Replayed, dom: str
) -> None:
    days = pl.read_parquet(replayed.output / "predictions.parquet")
    table = re.search(r'<table id="decisions">(.*?)</table>', dom, re.S).group(1)  # type: ignore[union-attr]
    rows = [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td.*?</td>", r, re.S)
        ]
        for r in re.findall(r"<tr class.*?</tr>", table, re.S)
    ]
    assert len(rows) == days.height == replayed.report["trading_days"]
    for row, day in zip(rows, days.iter_rows(named=True), strict=True):
        date, action, strike, premium, predicted, realized, pnl, reason = row
        assert (date, action, reason) == (day["date"].isoformat(), day["action"], day["reason"])
        if action == "NO_TRADE":
            assert (strike, premium) == (html_report.MISSING, html_report.MISSING)
        else:
            assert float(strike) == pytest.approx(day["strike"])
            assert float(premium) == pytest.approx(day["premium"], abs=0.005)
        assert float(pnl) == pytest.approx(day["pnl"], abs=0.005)
        assert float(realized.rstrip("%")) / 100 == pytest.approx(day["realized_return"], abs=5e-5)
        for cell in (predicted, realized, pnl):
            assert not re.fullmatch(r"-0(\.0*)?%?", cell), cell


def test_numbers_are_rounded_without_a_negative_zero() -> None:
    assert html_report.number(-0.0001, "+.2f") == "0.00"
    assert html_report.number(-0.004, ".2f") == "0.00"
    assert html_report.number(-0.006, ".2f") == "-0.01"
    assert html_report.percent(-0.00001, signed=True) == "0.00%"
    assert html_report.number(float("nan")) == html_report.MISSING
    assert html_report.number(None) == html_report.MISSING


def test_a_trade_day_shows_its_strike_and_premium(replayed: Replayed) -> None:
    """The replayed week has no trade (no same-day expiry): a made-up CALL on its first day."""
    days = pl.read_parquet(replayed.output / "predictions.parquet").head(1)
    strike, premium = days["open"][0] + 1.0, 1.234
    trade = days.with_columns(
        action=pl.lit("CALL"), strike=pl.lit(strike), premium=pl.lit(premium), pnl=pl.lit(-0.001)
    )
    (row,) = html_report.decision_rows(trade)
    assert (row["strike"], row["premium"]) == (format(strike, "g"), f"{premium:.2f}")
    assert row["pnl"] == "0.00"
    (row,) = html_report.decision_rows(trade.with_columns(action=pl.lit("NO_TRADE")))
    assert (row["strike"], row["premium"]) == (html_report.MISSING, html_report.MISSING)


def test_text_from_storage_is_escaped(replayed: Replayed) -> None:
    days = pl.read_parquet(replayed.output / "predictions.parquet").with_columns(
        pl.lit("<script>alert(1)</script> & more").alias("reason")
    )
    text = html_report.page("<b>AAPL</b>", days, [], "here", [])
    assert "<script>alert(1)" not in text and "<b>AAPL" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in text


def test_cli_report_writes_the_page(replayed: Replayed, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    proc = zdte(
        "report", "--ticker", "aapl", "--storage", replayed.storage, "--output", str(out),
        home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout
    text = out.read_text()
    assert len(plot_tags(text)) == len(html_report.PLOTS)
    assert text.count('<tr class="') == replayed.report["trading_days"]


def test_cli_report_on_a_range_without_stored_days_fails_in_one_line(
    replayed: Replayed, tmp_path: Path
) -> None:
    out = tmp_path / "page.html"
    day = NOT_PREDICTED.isoformat()
    proc = zdte(
        "report", "--ticker", "AAPL", "--storage", replayed.storage, "--output", str(out),
        "--start", day, "--end", day, home=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "no stored day" in one_line(proc.stderr)
    assert not out.exists()


def test_cli_report_rejects_a_bad_date_in_one_line(replayed: Replayed, tmp_path: Path) -> None:
    proc = zdte(
        "report", "--ticker", "AAPL", "--storage", replayed.storage, "--start", "2024-13-01",
        home=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "--start" in one_line(proc.stderr)
