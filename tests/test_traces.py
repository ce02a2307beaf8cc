"""Trace CSV loading: validation messages, round trips and the bundled traces."""

from __future__ import annotations

import math
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.loadgen import Gap, PoolProfile, generate
from scaler.traces import Column, Trace, TraceError, load_trace, write_trace
from tests.conftest import examples

ROOT = Path(__file__).resolve().parent.parent
POOLS = ("teams-connector", "teams-connector-us")
T0 = datetime(2026, 11, 18, 9, tzinfo=UTC)

H = "timestamp,pool,calls\n"
R1 = "2026-11-18T09:00:00Z,a,1\n"
R2 = "2026-11-18T09:01:00Z,a,2\n"


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BAD = [
    # (what, file contents, known pools, line, phrase)
    ("empty file", "", None, 1, "file is empty"),
    ("header only", H, None, 2, "no data rows"),
    ("wrong header", "time,pool,calls\n" + R1, None, 1, "header must contain timestamp,pool,calls"),
    (
        "unknown pool",
        H + R1 + "2026-11-18T09:00:00Z,x,1\n",
        ("a", "b"),
        3,
        "unknown pool 'x' (config has: a, b)",
    ),
    ("garbage timestamp", H + R1 + "yesterday,a,1\n", None, 3, "timestamp is not ISO-8601"),
    ("non-UTC offset", H + "2026-11-18T10:00:00+01:00,a,1\n", None, 2, "must be UTC"),
    (
        "negative calls",
        H + R1 + "2026-11-18T09:01:00Z,a,-3\n",
        None,
        3,
        "calls must be a non-negative number, got '-3'",
    ),
    ("NaN calls", H + "2026-11-18T09:00:00Z,a,nan\n", None, 2, "non-negative number, got 'nan'"),
    ("infinite calls", H + "2026-11-18T09:00:00Z,a,inf\n", None, 2, "got 'inf'"),
    ("text calls", H + R1 + R2 + "2026-11-18T09:02:00Z,a,lots\n", None, 4, "got 'lots'"),
    ("out of order", H + R2 + R1, None, 3, "earlier than the previous row"),
    (
        "duplicate",
        H + R1 + "2026-11-18T09:00:00Z,b,1\n" + R1,
        None,
        4,
        "duplicate row for pool 'a' at 2026-11-18T09:00:00Z (first on line 2)",
    ),
    (
        "off the grid",
        H + R1 + R2 + "2026-11-18T09:02:17Z,a,2\n2026-11-18T09:03:00Z,a,2\n"
        "2026-11-18T09:04:00Z,a,2\n",
        None,
        4,
        "timestamp 2026-11-18T09:02:17Z is off the 60 s step grid starting at 2026-11-18T09:00:00Z",
    ),
    ("short row", H + R1 + "2026-11-18T09:01:00Z,a\n", None, 3, "expected at least 3 columns"),
    ("empty pool", H + "2026-11-18T09:00:00Z,,1\n", None, 2, "pool is empty"),
    (
        "rows 50 years apart",
        H + R1 + R2 + "2076-11-18T09:01:00Z,a,2\n",
        None,
        4,
        "the trace spans 18,263.0 days (2026-11-18T09:00:00Z to 2076-11-18T09:01:00Z); at its "
        "60 s step that is 26,298,722 steps, more than the limit of 1,100,000 steps",
    ),
    (
        "a one-second step with a 400-day gap",
        H
        + "".join(f"2026-11-18T09:00:0{s}Z,a,1\n" for s in range(4))
        + "2027-12-23T09:00:00Z,a,1\n",
        None,
        6,
        "at its 1 s step that is 34,560,001 steps, more than the limit",
    ),
    (
        "too many cells",
        H
        + "".join(f"2026-11-18T09:0{m}:00Z,p{k},1\n" for m in range(3) for k in range(40))
        + "2027-11-18T09:00:00Z,p0,1\n",
        None,
        122,
        "that is 525,601 steps x 40 pools, more than the limit of 1,100,000 steps and "
        "20,000,000 cells",
    ),
    (
        "no calls at all",
        H + "2026-11-18T09:00:00Z,a,\n2026-11-18T09:00:00Z,b, \n2026-11-18T09:01:00Z,a,\n",
        None,
        2,
        "no data: the calls cell of all 3 rows is empty",
    ),
    ("NUL byte", H + R1 + "2026-11-18T09:01:00Z,a,\x002\n", None, 3, "got '\\x002'"),
    (
        "a field beyond the CSV field limit",
        H + R1 + '2026-11-18T09:01:00Z,a,"' + "9" * 200_000 + '"\n',
        None,
        3,
        "not valid CSV (field larger than field limit (131072))",
    ),
]


@pytest.mark.parametrize(
    ("text", "known", "line", "phrase"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_trace_names_file_line_and_problem(
    tmp_path: Path, text: str, known: tuple[str, ...] | None, line: int, phrase: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TraceError) as err:
        load_trace(path, known_pools=known)
    assert str(err.value).startswith(f"{path} line {line}: ")
    assert phrase in str(err.value)
    assert isinstance(err.value, ValueError)


def test_round_trip_through_write_trace(tmp_path: Path) -> None:
    rows: list[tuple[datetime, str, float | None]] = []
    for i in range(5):
        ts = T0 + timedelta(minutes=i)
        rows += [(ts, "lon", i * 10), (ts, "nyc", None if i == 2 else 2.5 * i)]
    path = tmp_path / "t.csv"
    assert write_trace(path, rows) == 10
    trace = load_trace(path, known_pools=["nyc", "lon"])
    assert trace.start == T0
    assert trace.step_seconds == 60
    assert trace.pools == ("lon", "nyc")
    assert trace.length == 5
    assert list(trace.calls["lon"]) == [0, 10, 20, 30, 40]
    assert list(trace.calls["nyc"]) == [0, 2.5, None, 7.5, 10]
    assert trace.timestamp(4) == T0 + timedelta(minutes=4)
    assert trace.end == T0 + timedelta(minutes=5)
    with pytest.raises(IndexError, match="step 5 outside trace of 5 steps"):
        trace.timestamp(5)


def test_write_trace_refuses_values_it_could_not_load_back(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        write_trace(tmp_path / "t.csv", [(T0, "a", -1.0)])


def test_tolerates_bom_extra_columns_other_column_order_and_utc_spellings(
    tmp_path: Path,
) -> None:
    text = (
        "\ufeffpool,calls,timestamp,comment\n"
        "a,1,2026-11-18T09:00:00Z,first\n"
        "a, 2 ,2026-11-18T09:01:00+00:00,offset\n"
        "a,3,2026-11-18 09:02:00,naive means UTC\n"
        "\n"
    )
    trace = load_trace(write(tmp_path, text))
    assert trace.start == T0
    assert trace.start.tzinfo is not None
    assert list(trace.calls["a"]) == [1, 2, 3]


def test_missing_rows_and_empty_cells_load_as_unavailable(tmp_path: Path) -> None:
    text = H + (
        "2026-11-18T09:00:00Z,a,5\n"
        "2026-11-18T09:00:00Z,b,6\n"
        "2026-11-18T09:01:00Z,a,\n"  # empty cell
        "2026-11-18T09:02:00Z,b,7\n"  # row for a missing
        "2026-11-18T09:03:00Z,a,8\n"
        "2026-11-18T09:03:00Z,b,9\n"
    )
    trace = load_trace(write(tmp_path, text))
    assert trace.calls["a"] == (5, None, None, 8)
    assert trace.calls["b"] == (6, None, 7, 9)


def test_step_is_the_most_common_difference(tmp_path: Path) -> None:
    stamps = ["09:00", "09:05", "09:10", "09:20", "09:25"]  # 09:15 missing entirely
    text = H + "".join(f"2026-11-18T{s}:00Z,a,1\n" for s in stamps)
    trace = load_trace(write(tmp_path, text))
    assert trace.step_seconds == 300
    assert trace.calls["a"] == (1, 1, 1, None, 1, 1)


def test_single_timestamp_defaults_to_one_minute_step(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, H + R1))
    assert (trace.step_seconds, trace.length, trace.calls["a"]) == (60, 1, (1,))


@st.composite
def traces(draw: st.DrawFn) -> tuple[list[str], int, list[list[float | None]], list[list[bool]]]:
    """Pools, step, per-pool values and whether each None is written as a missing row."""
    pools = draw(
        st.lists(st.text("abcxyz-_", min_size=1, max_size=6), min_size=1, max_size=3, unique=True)
    )
    step = draw(st.sampled_from([1, 30, 60, 300, 3600]))
    length = draw(st.integers(1, 30))
    value = st.one_of(
        st.none(),
        st.integers(0, 10_000).map(float),
        st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
    )
    values = [draw(st.lists(value, min_size=length, max_size=length)) for _ in pools]
    if all(v is None for column in values for v in column):
        values[0][0] = 0.0  # a trace with no value at all is refused ("no data")
    omit = [draw(st.lists(st.booleans(), min_size=length, max_size=length)) for _ in pools]
    return pools, step, values, omit


@settings(max_examples=examples(60), deadline=None)
@given(traces())
def test_any_valid_trace_loads_back_the_same(
    tmp_path_factory: pytest.TempPathFactory,
    case: tuple[list[str], int, list[list[float | None]], list[list[bool]]],
) -> None:
    pools, step, values, omit = case
    rows: list[tuple[datetime, str, float | None]] = []
    for i in range(len(values[0])):
        ts = T0 + timedelta(seconds=step * i)
        for k, pool in enumerate(pools):
            # The first pool always has a row, so every timestamp appears, and every pool
            # has its first row, so pools appear in order: a missing row is only dropped
            # where the trace shape stays unambiguous.
            dropped = values[k][i] is None and omit[k][i] and k > 0 and i > 0
            if not dropped:
                rows.append((ts, pool, values[k][i]))
    path = tmp_path_factory.mktemp("prop") / "trace.csv"
    write_trace(path, rows)
    trace = load_trace(path, known_pools=pools)
    assert trace.start == T0
    assert trace.pools == tuple(pools)
    assert trace.length == len(values[0])
    if trace.length > 1:
        assert trace.step_seconds == step
    for k, pool in enumerate(pools):
        assert list(trace.calls[pool]) == values[k]


def _count(trace: Trace, pool: str) -> tuple[int, float]:
    series = trace.calls[pool]
    return sum(v is None for v in series), max(v for v in series if v is not None)


def test_bundled_demo_day_is_one_clean_wednesday() -> None:
    trace = load_trace(ROOT / "scaler" / "data" / "demo-day.csv", known_pools=POOLS)
    assert trace.start == datetime(2026, 11, 18, tzinfo=UTC)
    assert (trace.step_seconds, trace.length, trace.pools) == (60, 1440, POOLS)
    london_missing, london_peak = _count(trace, "teams-connector")
    us_missing, us_peak = _count(trace, "teams-connector-us")
    assert london_missing == us_missing == 0
    assert 120 < london_peak < 190
    assert 70 < us_peak < 120


def test_bundled_five_week_trace_matches_its_readme() -> None:
    trace = load_trace(ROOT / "examples" / "traces" / "two-regions-5w.csv", known_pools=POOLS)
    assert trace.start == datetime(2026, 10, 5, tzinfo=UTC)
    assert (trace.step_seconds, trace.length, trace.pools) == (60, 35 * 1440, POOLS)
    assert _count(trace, "teams-connector")[0] == 50
    assert _count(trace, "teams-connector-us")[0] == 32

    def day(pool: str, when: datetime) -> list[float]:
        i = (when - trace.start) // timedelta(minutes=1)
        return [v for v in trace.calls[pool][i : i + 1440] if v is not None]

    holiday = datetime(2026, 10, 19, tzinfo=UTC)
    assert max(day("teams-connector", holiday)) < 15
    assert max(day("teams-connector-us", holiday)) > 60
    spike = datetime(2026, 10, 29, 14, 20, tzinfo=UTC)
    i = (spike - trace.start) // timedelta(minutes=1)
    us = trace.calls["teams-connector-us"]
    before, during = us[i - 10 : i], us[i : i + 45]
    assert all(v is not None for v in (*before, *during))
    assert min(v or 0 for v in during) > 2 * max(v or 0 for v in before)


def test_generated_rows_in_memory_match_the_same_rows_written_and_read(tmp_path: Path) -> None:
    start = datetime(2026, 11, 18, tzinfo=UTC)
    profiles = (PoolProfile("a", "Europe/London", 50, seed=3), PoolProfile("b", "UTC", 20))
    gaps = (Gap("b", start + timedelta(hours=9), 5),)
    path = tmp_path / "t.csv"
    write_trace(path, generate(profiles, start, 1, gaps=gaps))
    from_file = load_trace(path)
    in_memory = Trace.from_rows(generate(profiles, start, 1, gaps=gaps), start=start)
    assert in_memory.pools == from_file.pools == ("a", "b")
    assert in_memory.length == from_file.length == 1440
    assert {k: tuple(v) for k, v in in_memory.calls.items()} == {
        k: tuple(v) for k, v in from_file.calls.items()
    }
    assert in_memory.calls["b"][9 * 60] is None


def test_generated_rows_with_a_short_pool_are_refused() -> None:
    start = datetime(2026, 11, 18, tzinfo=UTC)
    rows = [(start, "a", 1.0), (start, "b", 2.0), (start + timedelta(minutes=1), "a", 1.0)]
    with pytest.raises(TraceError, match="unequal lengths"):
        Trace.from_rows(rows, start=start)


def test_non_utf8_trace_names_the_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((H + R1).encode() + b"2026-11-18T09:01:00Z,caf\xe9,2\n")
    with pytest.raises(TraceError) as err:
        load_trace(path)
    assert str(err.value) == f"{path} line 3: not UTF-8 text (byte 0xe9 at offset 70)"


def test_only_regular_files_are_read() -> None:
    with pytest.raises(TraceError, match="/dev/zero: not a regular file"):
        load_trace("/dev/zero")


def test_a_long_trace_loads_without_a_copy_of_every_row(tmp_path: Path) -> None:
    """Rows go straight into per-pool columns: peak memory while loading stays within a small
    multiple of the loaded trace (keeping every row as a tuple first took about 7x)."""
    import tracemalloc

    pools = [f"p{k}" for k in range(20)]
    rows = [
        (T0 + timedelta(minutes=i), pool, float((i * 7 + k) % 150))
        for i in range(2 * 1440)
        for k, pool in enumerate(pools)
    ]
    path = tmp_path / "t.csv"
    write_trace(path, rows)
    del rows
    tracemalloc.start()
    try:
        trace = load_trace(path)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert trace.length == 2 * 1440 and len(trace.pools) == 20
    assert peak < 2.5 * kept, (peak, kept)


@settings(max_examples=examples(80), deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)), max_size=40),
    st.integers(-45, 45),
    st.integers(-45, 45),
)
def test_column_reads_as_the_tuple_it_stands_for(
    values: list[float | None], a: int, b: int
) -> None:
    column = Column(values)
    assert list(column) == values
    assert len(column) == len(values)
    assert column == tuple(values) and column == values
    assert hash(column) == hash(tuple(values))
    assert list(column[a:b]) == values[a:b]
    assert list(column[::-2]) == values[::-2]
    for i in (a, b):
        if -len(values) <= i < len(values):
            assert column[i] == values[i]
        else:
            with pytest.raises(IndexError, match="out of range"):
                column[i]
    # one double per step, NaN where the metric was unavailable
    assert [math.isnan(v) for v in column.values] == [v is None for v in values]
    assert pickle.loads(pickle.dumps(column)) == column


def test_loaded_trace_holds_one_double_per_step_and_pool(tmp_path: Path) -> None:
    text = H + (
        "2026-11-18T09:00:00Z,a,5\n"
        "2026-11-18T09:00:00Z,b,6\n"
        "2026-11-18T09:01:00Z,a,\n"
        "2026-11-18T09:03:00Z,b,9\n"  # 09:02 missing entirely, a missing at 09:03
    )
    trace = load_trace(write(tmp_path, text))
    assert trace.length == 4
    for pool, expected in (("a", (5, None, None, None)), ("b", (6, None, None, 9))):
        column = trace.calls[pool]
        assert isinstance(column, Column) and column == expected
        assert (column.values.typecode, len(column.values)) == ("d", 4)
