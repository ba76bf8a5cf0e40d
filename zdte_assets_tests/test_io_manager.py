"""ZdteIOManager end to end: real Dagster runs writing to a directory and to SeaweedFS, objects
read back with plain polars/boto3, partition ranges, partition-window inputs, no pickle."""

import datetime as dt
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from zdte_assets.orchestration.io_manager import (
    WINDOW_INPUT,
    IOManagerError,
    ZdteIOManager,
    is_window_input,
    markdown_preview,
)
from zdte_assets.orchestration.resources import s3_resource
from zdte_assets.storage.keys import object_key
from zdte_assets_tests.conftest import S3Bucket

DAYS = dg.DailyPartitionsDefinition(start_date="2024-06-03", end_date="2024-06-29")
SINGLE_RUN = dg.BackfillPolicy.single_run()
BAR = dg.AssetKey(["AAPL", "daily_bar"])
STATS = dg.AssetKey(["AAPL", "stats"])
WINDOW = dg.AssetKey(["AAPL", "window"])
SAME_DAY = dg.AssetKey(["AAPL", "same_day"])
CARD = dg.AssetKey(["AAPL", "card"])


def build_assets(level: float = 100.0, skip_day: str | None = None) -> list[dg.AssetsDefinition]:
    """A tiny ticker graph shaped like zdte's: range-aware daily assets and a window consumer."""

    @dg.asset(key=BAR, partitions_def=DAYS, backfill_policy=SINGLE_RUN)
    def daily_bar(context: dg.AssetExecutionContext) -> pl.DataFrame:
        days = [dt.date.fromisoformat(k) for k in context.partition_keys]
        days = [d for d in days if d.isoformat() != skip_day]
        return pl.DataFrame(
            {"date": days, "close": [level + d.day for d in days]},
            schema={"date": pl.Date, "close": pl.Float64},
        )

    @dg.asset(key=STATS, partitions_def=DAYS, backfill_policy=SINGLE_RUN)
    def stats(context: dg.AssetExecutionContext) -> dict[str, Any]:
        return {
            k: {"day": dt.date.fromisoformat(k), "level": level} for k in context.partition_keys
        }

    @dg.asset(
        key=WINDOW,
        partitions_def=DAYS,
        ins={
            "bars": dg.AssetIn(
                key=BAR,
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-3, end_offset=-1),
                metadata=WINDOW_INPUT,
            ),
            "stats": dg.AssetIn(
                key=STATS,
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-3, end_offset=-1),
                metadata=WINDOW_INPUT,
            ),
        },
    )
    def window(bars: pl.DataFrame, stats: dict[str, Any]) -> dict[str, Any]:
        return {
            "dates": [d.isoformat() for d in bars["date"]] if bars.height else [],
            "closes": bars["close"].to_list() if bars.height else [],
            "stats_keys": list(stats),
            "stats_days": [v["day"] for v in stats.values()],
        }

    @dg.asset(key=SAME_DAY, partitions_def=DAYS, ins={"bars": dg.AssetIn(key=BAR)})
    def same_day(bars: pl.DataFrame) -> pl.DataFrame:
        return bars.with_columns(double=pl.col("close") * 2)

    @dg.asset(key=CARD)
    def card() -> dict[str, Any]:
        return {"name": "card", "made": dt.date(2024, 6, 11)}

    return [daily_bar, stats, window, same_day, card]


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    """One in-memory instance for the module: creating one per run costs about half a second."""
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


class Target:
    """Where a test's objects live, with a Dagster-free way to read them."""

    def __init__(
        self,
        url: str,
        keys: Callable[[], list[str]],
        read: Callable[[str], bytes],
        instance: dg.DagsterInstance,
    ):
        self.url = url
        self.keys = keys
        self.read = read
        self.instance = instance

    def frame(self, key: str) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(self.read(key)))

    def json(self, key: str) -> Any:
        return json.loads(self.read(key))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.services)])
def target(request: pytest.FixtureRequest, tmp_path: Path, instance: dg.DagsterInstance) -> Target:
    """Objects in a local directory or in a fresh SeaweedFS bucket (under the prefix zdte/)."""
    if request.param == "local":
        root = tmp_path / "objects"

        def local_keys() -> list[str]:
            return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

        return Target(str(root), local_keys, lambda k: (root / k).read_bytes(), instance)
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    client = bucket.client()

    def s3_keys() -> list[str]:
        return [k.removeprefix("zdte/") for k in bucket.keys("zdte/")]

    def s3_read(k: str) -> bytes:
        return client.get_object(Bucket=bucket.name, Key=f"zdte/{k}")["Body"].read()

    return Target(bucket.url("zdte"), s3_keys, s3_read, instance)


@pytest.fixture
def local_target(tmp_path: Path, instance: dg.DagsterInstance) -> Target:
    """Local only, for behaviour that does not depend on the store (errors, value types)."""
    root = tmp_path / "objects"

    def local_keys() -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    return Target(str(root), local_keys, lambda k: (root / k).read_bytes(), instance)


def run(
    target: Target,
    assets: list[dg.AssetsDefinition],
    select: list[dg.AssetKey],
    partition_key: str | None = None,
    key_range: tuple[str, str] | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    tags = {}
    if key_range:
        tags = {
            "dagster/asset_partition_range_start": key_range[0],
            "dagster/asset_partition_range_end": key_range[1],
        }
    return dg.materialize(
        assets,
        selection=select,
        partition_key=partition_key,
        tags=tags,
        # The S3 client comes from dagster-aws's resource, configured like the plain one.
        resources={"io_manager": ZdteIOManager(storage_url=target.url, s3=s3_resource())},
        raise_on_error=raise_on_error,
        instance=target.instance,
    )


def no_pickle(target: Target) -> None:
    keys = target.keys()
    assert keys, "nothing stored"
    assert all(k.endswith((".parquet", ".json")) for k in keys), keys
    for k in keys:
        assert not target.read(k).startswith(b"\x80"), f"{k} looks pickled"


def test_single_partition_round_trip(target: Target) -> None:
    result = run(target, build_assets(), [BAR], partition_key="2024-06-11")
    assert result.success
    assert target.keys() == ["AAPL/daily_bar/2024-06-11.parquet"]
    frame = target.frame("AAPL/daily_bar/2024-06-11.parquet")
    assert frame.to_dicts() == [{"date": dt.date(2024, 6, 11), "close": 111.0}]
    assert frame.schema["date"] == pl.Date

    (event,) = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    uri = meta["dagster/uri"].value
    assert isinstance(uri, str)
    assert uri.endswith("AAPL/daily_bar/2024-06-11.parquet")
    assert uri.startswith(target.url)
    assert meta["dagster/row_count"].value == 1
    assert "| date | close |" in str(meta["storage_preview"].value)

    # A downstream asset on the same partition loads it back through the manager.
    result = run(target, build_assets(), [SAME_DAY], partition_key="2024-06-11")
    assert target.frame("AAPL/same_day/2024-06-11.parquet")["double"].to_list() == [222.0]
    no_pickle(target)


def test_rematerialize_replaces_partition(target: Target) -> None:
    run(target, build_assets(level=100.0), [BAR, STATS], partition_key="2024-06-11")
    run(target, build_assets(level=500.0), [BAR, STATS], partition_key="2024-06-11")
    assert target.frame("AAPL/daily_bar/2024-06-11.parquet")["close"].to_list() == [511.0]
    # The range-aware {partition_key: value} shape of a one-partition run is unwrapped.
    assert target.json("AAPL/stats/2024-06-11.json") == {"day": "2024-06-11", "level": 500.0}
    assert target.keys() == ["AAPL/daily_bar/2024-06-11.parquet", "AAPL/stats/2024-06-11.json"]


def test_range_run_writes_one_object_per_partition(target: Target) -> None:
    result = run(target, build_assets(), [BAR, STATS], key_range=("2024-06-10", "2024-06-14"))
    assert result.success
    days = ["2024-06-10", "2024-06-11", "2024-06-12", "2024-06-13", "2024-06-14"]
    assert target.keys() == sorted(
        [f"AAPL/daily_bar/{d}.parquet" for d in days] + [f"AAPL/stats/{d}.json" for d in days]
    )
    for d in days:
        frame = target.frame(f"AAPL/daily_bar/{d}.parquet")
        assert frame["date"].to_list() == [dt.date.fromisoformat(d)]
        assert target.json(f"AAPL/stats/{d}.json") == {"day": d, "level": 100.0}
    events = result.get_asset_materialization_events()
    assert {e.partition for e in events if e.asset_key == BAR} == set(days)
    meta = next(e for e in events if e.asset_key == BAR).materialization.metadata
    assert meta["rows_in_run"].value == 5
    assert "dagster/row_count" not in meta
    assert meta["partitions_in_run"].value == 5
    assert str(meta["first_url"].value).endswith(f"AAPL/daily_bar/{days[0]}.parquet")
    assert str(meta["last_url"].value).endswith(f"AAPL/daily_bar/{days[-1]}.parquet")
    no_pickle(target)


def test_window_input_concatenates_upstream_partitions(target: Target) -> None:
    assets = build_assets()
    run(target, assets, [BAR, STATS], key_range=("2024-06-10", "2024-06-14"))
    run(target, assets, [WINDOW], partition_key="2024-06-14")
    got = target.json("AAPL/window/2024-06-14.json")
    assert got["dates"] == ["2024-06-11", "2024-06-12", "2024-06-13"]
    assert got["closes"] == [111.0, 112.0, 113.0]
    assert got["stats_keys"] == ["2024-06-11", "2024-06-12", "2024-06-13"]
    assert got["stats_days"] == ["2024-06-11", "2024-06-12", "2024-06-13"]

    # Missing upstream partitions are skipped; completeness is the domain code's call.
    run(target, assets, [WINDOW], partition_key="2024-06-12")  # window 06-09..06-11
    got = target.json("AAPL/window/2024-06-12.json")
    assert got["dates"] == ["2024-06-10", "2024-06-11"]
    assert got["stats_keys"] == ["2024-06-10", "2024-06-11"]

    # Nothing stored at all: empty values of the declared types.
    run(target, assets, [WINDOW], partition_key="2024-06-25")
    assert target.json("AAPL/window/2024-06-25.json") == {
        "closes": [],
        "dates": [],
        "stats_days": [],
        "stats_keys": [],
    }
    no_pickle(target)


def test_window_shape_does_not_depend_on_how_many_partitions_it_holds(target: Target) -> None:
    """Near the start of the partitions a window holds one upstream partition (or none): the
    consumer still gets {partition_key: value} and a frame, never the bare value."""
    assets = build_assets()
    first = DAYS.get_first_partition_key()
    assert first is not None
    run(target, assets, [BAR, STATS], partition_key=first)
    second = DAYS.get_partition_keys()[1]
    run(target, assets, [WINDOW], partition_key=second)  # window: the first partition only
    got = target.json(f"AAPL/window/{second}.json")
    assert got["stats_keys"] == [first]
    assert got["stats_days"] == [first]
    assert got["dates"] == [first]

    run(target, assets, [WINDOW], partition_key=first)  # window before the first partition
    assert target.json(f"AAPL/window/{first}.json")["stats_keys"] == []


def test_undeclared_multi_partition_json_input_is_refused(local_target: Target) -> None:
    """A same-partition JSON input in a range run has no shape of its own: one clear error
    naming the fix, instead of a dict where a value was declared."""

    @dg.asset(
        key=["AAPL", "echo"],
        partitions_def=DAYS,
        backfill_policy=SINGLE_RUN,
        ins={"stats": dg.AssetIn(key=STATS)},
    )
    def echo(context: dg.AssetExecutionContext, stats: Any) -> dict[str, Any]:
        return {k: {"seen": True} for k in context.partition_keys}

    assets = [*build_assets(), echo]
    run(local_target, assets, [STATS], key_range=("2024-06-10", "2024-06-11"))
    with pytest.raises(Exception) as info:
        run(local_target, assets, [echo.key], key_range=("2024-06-10", "2024-06-11"))
    err = _user_error(info.value)
    assert isinstance(err, IOManagerError)
    assert "WINDOW_INPUT" in str(err)


def test_every_window_of_the_code_location_is_declared() -> None:
    """Each input whose partition mapping spans several upstream partitions carries
    WINDOW_INPUT, so its consumer always gets the window shape."""
    from zdte_assets.orchestration.definitions import build_definitions

    defs = build_definitions(tickers=["AAPL"])
    windows = 0
    for assets_def in defs.resolve_asset_graph().assets_defs:
        for name, key in assets_def.keys_by_input_name.items():
            mapping = assets_def.get_partition_mapping(key)
            spans = isinstance(mapping, dg.TimeWindowPartitionMapping) and (
                mapping.start_offset != mapping.end_offset
            )
            declared = is_window_input(assets_def.op.ins[name].metadata)
            assert declared == spans, f"{assets_def.key.to_user_string()} input {name}"
            windows += declared
    assert windows >= 1


def test_missing_single_partition_names_url(target: Target) -> None:
    with pytest.raises(Exception) as info:
        run(target, build_assets(), [SAME_DAY], partition_key="2024-06-20")
    err = _user_error(info.value)
    assert isinstance(err, IOManagerError)
    assert "AAPL/daily_bar partition 2024-06-20" in str(err)
    assert f"{target.url}/AAPL/daily_bar/2024-06-20.parquet" in str(err)
    assert "\n" not in str(err)


def test_range_with_empty_partition_writes_nothing(local_target: Target) -> None:
    target = local_target
    run(target, build_assets(level=1.0), [BAR], partition_key="2024-06-10")
    with pytest.raises(Exception) as info:
        run(
            target,
            build_assets(level=9.0, skip_day="2024-06-12"),
            [BAR],
            key_range=("2024-06-10", "2024-06-14"),
        )
    err = _user_error(info.value)
    assert isinstance(err, IOManagerError)
    assert "no rows for partition 2024-06-12" in str(err)
    # The earlier object is untouched and no other partition was written.
    assert target.keys() == ["AAPL/daily_bar/2024-06-10.parquet"]
    assert target.frame("AAPL/daily_bar/2024-06-10.parquet")["close"].to_list() == [11.0]


def test_unpartitioned_json_and_unsupported_type(local_target: Target) -> None:
    target = local_target
    run(target, build_assets(), [CARD])
    assert target.keys() == ["AAPL/card.json"]
    raw = target.read("AAPL/card.json").decode()
    assert json.loads(raw) == {"made": "2024-06-11", "name": "card"}
    assert raw.startswith('{\n  "made"')

    @dg.asset(key=["AAPL", "blob"])
    def blob() -> object:
        return {1, 2, 3}

    with pytest.raises(Exception) as info:
        run(target, [blob], [blob.key])
    err = _user_error(info.value)
    assert isinstance(err, IOManagerError)
    assert "never pickled" in str(err)
    assert target.keys() == ["AAPL/card.json"]


def test_type_change_leaves_no_stale_object(tmp_path: Path) -> None:
    """Loading prefers Parquet; a value that became JSON must not be shadowed by an old frame."""
    url = str(tmp_path)

    def make(as_frame: bool) -> dg.AssetsDefinition:
        @dg.asset(key=["AAPL", "flip"])
        def flip() -> Any:
            return pl.DataFrame({"a": [1]}) if as_frame else {"a": 2}

        return flip

    @dg.asset(key=["AAPL", "reader"], ins={"flip": dg.AssetIn(key=["AAPL", "flip"])})
    def reader(flip: Any) -> dict[str, Any]:
        return {"got": flip if isinstance(flip, dict) else flip.to_dicts()}

    io_manager = ZdteIOManager(storage_url=url)
    dg.materialize([make(True)], resources={"io_manager": io_manager})
    dg.materialize([make(False)], resources={"io_manager": io_manager})
    assert sorted(p.name for p in (tmp_path / "AAPL").iterdir()) == ["flip.json"]
    dg.materialize(
        [make(False), reader],
        selection=[reader.key],
        resources={"io_manager": io_manager},
    )
    assert json.loads((tmp_path / "AAPL" / "reader.json").read_text()) == {"got": {"a": 2}}


def test_default_url_comes_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZDTE_STORAGE_URL", str(tmp_path / "from-env"))
    assert ZdteIOManager().resolved_url() == str(tmp_path / "from-env")
    dg.materialize(build_assets(), selection=[CARD], resources={"io_manager": ZdteIOManager()})
    assert (tmp_path / "from-env" / "AAPL" / "card.json").is_file()


def test_object_key_and_preview() -> None:
    assert object_key(["AAPL", "daily_bar"], "2024-06-11", "parquet") == (
        "AAPL/daily_bar/2024-06-11.parquet"
    )
    assert object_key(["AAPL", "model"], None, "json") == "AAPL/model.json"
    md = markdown_preview(pl.DataFrame({"a": range(10), "b": [0.123456789] * 10}))
    lines = md.splitlines()
    assert lines[0] == "| a | b |"
    assert len(lines) == 2 + 5
    assert lines[2] == "| 0 | 0.123457 |"


def _user_error(exc: BaseException) -> BaseException:
    """The exception raised in the I/O manager, from inside Dagster's wrappers."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, IOManagerError):
            return seen
        seen = getattr(seen, "user_exception", None) or seen.__cause__
    return exc
