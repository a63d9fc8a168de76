"""Reading the four input feeds (SPEC §1) into typed polars frames.

A file is recognised by its header, never by its name. Every data record either becomes a
typed row or a rejected row carrying its line number, raw text and a reason; nothing is
dropped silently. Only a file that is unreadable as a whole (not UTF-8 text, unknown header)
raises `FeedFileError`, whose message names the file and what was expected and quotes at most
a short, sanitised excerpt of it.

Files are CSV as RFC 4180 (and Python's `csv` module) read them: a field that opens with a
double quote may hold commas, doubled quotes and newlines. The work is done with polars string
kernels over whole columns rather than a row-by-row CSV reader, which keeps the exact raw text
and the first line number of every record for the rejected-rows table. A file without any
double quote (the real feeds) takes the short path: one record per line, split on commas.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import os
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
import polars as pl
from polars.expr.whenthen import ChainedThen, Then

from storemon_assets.core.feeds import HOURS, POLLS, SPECIAL, TIMEZONES
from storemon_assets.core.tables import REJECTED_ROWS

T = TypeVar("T")

# Accepted header spellings per kind; the first spelling of each column is canonical.
FEED_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    POLLS: {"store_id": ("store_id",), "status": ("status",), "timestamp_utc": ("timestamp_utc",)},
    HOURS: {
        "store_id": ("store_id",),
        "day_of_week": ("dayofweek", "day"),
        "start_time_local": ("start_time_local",),
        "end_time_local": ("end_time_local",),
    },
    TIMEZONES: {"store_id": ("store_id",), "timezone_str": ("timezone_str",)},
    SPECIAL: {
        "store_id": ("store_id",),
        "date_local": ("date_local",),
        "start_time_local": ("start_time_local",),
        "end_time_local": ("end_time_local",),
    },
}

EXPECTED_HEADERS = (
    "store_id,status,timestamp_utc (status polls); "
    "store_id,dayOfWeek|day,start_time_local,end_time_local (business hours); "
    "store_id,timezone_str (timezones); "
    "store_id,date_local,start_time_local,end_time_local (special hours)"
)

# What the parser knows of a rejected row; the loader adds the file and the kind.
REJECTED_COLUMNS = REJECTED_ROWS.subset("line_number", "store_id", "raw_text", "reason")


class FeedFileError(ValueError):
    """A whole file cannot be ingested; the message is one line meant for the user."""

    @classmethod
    def unreadable(cls, name: str, exc: OSError) -> FeedFileError:
        """'<name>: cannot read file (<the system's reason>)': the one wording, wherever a read fails."""
        return cls(f"{name}: cannot read file ({exc.strerror or exc})")


@dataclass(frozen=True)
class ParsedFeed:
    """One input file, parsed. `rows` is typed per kind; `rejected` follows REJECTED_COLUMNS."""

    path: Path
    sha256: str
    kind: str
    rows: pl.DataFrame
    rejected: pl.DataFrame  # the first MAX_REJECTED_KEPT rejected rows, with their text
    rows_read: int
    rejected_by_reason: pl.DataFrame  # reason, row_count: every rejected row, counted

    @property
    def rows_rejected(self) -> int:
        return int(self.rejected_by_reason.get_column("row_count").sum())

    def chunks(self) -> Iterator[FeedChunk]:
        """The whole file as one chunk (what `load_feed` takes)."""
        yield FeedChunk(self.rows, self.rejected, self.rejected_by_reason, self.rows_read)


# Messages and logs quote at most this much of a file's content, control characters escaped.
EXCERPT_CHARS = 60
# A rejected record's raw text is kept up to this length (an unterminated quote can swallow
# the rest of a file into one record).
MAX_RAW_TEXT_CHARS = 2_000
# Rejected rows kept per file with their text (the first ones); every one is counted by reason.
MAX_REJECTED_KEPT = 10_000
# A line longer than this is rejected whole before its fields are split (a 200 MB line once took
# 4 GB to parse): a record of these feeds is a few dozen bytes.
MAX_LINE_BYTES = 64 * 1024
LONG_LINE_REASON = f"line longer than {MAX_LINE_BYTES:,} bytes (a record of these feeds is a few dozen)"
# A record over several lines (a quoted field holding newlines) is held to the same bound.
LONG_RECORD_REASON = f"record longer than {MAX_LINE_BYTES:,} bytes over several lines (a quoted field left open?)"
UNTERMINATED_REASON = "unterminated quoted field (a field that opens with a double quote must close with one)"
# The file's first bytes, where its header must be (as the landing sensor reads them).
HEAD_BYTES = 64 * 1024
# Bytes read and parsed at a time (cut at a line's end): one block's bytes, lines and rows are
# what exists at once, whatever the file's size.
READ_BLOCK_BYTES = 16 * 2**20
# Records parsed at a time within a block: the working columns (fields, typed values, reasons)
# of a block of the shortest lines stay bounded too (48 MB of 6-byte rows: 0.78 GB at 500,000, 0.45 GB at 100,000).
PARSE_CHUNK_ROWS = 100_000
# A rejected row's store_id is kept up to this length.
MAX_STORE_ID_CHARS = 200
# SPEC §1: a store_id beginning with one of these is a formula to a spreadsheet (`=1+1`,
# `@SUM(1)`): rejected, so that no report CSV served as a download carries one.
FORMULA_START = r"^[=+\-@]"
FORMULA_REASON = "store_id begins with =, +, - or @ (a spreadsheet would run it as a formula)"
# SPEC §1: a poll more than this long after the moment its file is ingested is "from the future".
FUTURE_TOLERANCE_US = 3_600 * 1_000_000


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A short, quoted, printable excerpt of untrusted text, for error messages and logs."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def detect_kind(header_fields: list[str]) -> tuple[str, list[str]] | None:
    """Map a header to (kind, canonical column name per position), or None if unknown."""
    lowered = [f.lower() for f in header_fields]
    for kind, columns in FEED_COLUMNS.items():
        if len(lowered) != len(columns):
            continue
        canonical: list[str] = []
        for field in lowered:
            match = next((name for name, spellings in columns.items() if field in spellings), None)
            if match is None or match in canonical:
                break
            canonical.append(match)
        else:
            return kind, canonical
    return None


def header_kind(head: bytes, name: str, whole_file: bool = True) -> tuple[str, list[str], int]:
    """(kind, canonical columns, 1-based line number of the header) from the first bytes of a
    file; raises FeedFileError when they hold no known header. `whole_file=False` means `head`
    is only the start of a longer file (the landing sensor reads no more than that)."""
    # Walk to the first non-blank line without splitting the rest of a file of millions of lines.
    line_number, start = 1, 0
    while True:
        end = head.find(b"\n", start)
        raw = head[start:] if end == -1 else head[start:end]
        if raw.strip() or end == -1:
            break
        line_number, start = line_number + 1, end + 1
    if not raw.strip() and whole_file:
        raise FeedFileError(f"{name}: empty file; expected a header line, one of: {EXPECTED_HEADERS}")
    if not whole_file and end == -1:  # the header line does not end within `head`
        raise FeedFileError(
            f"{name}: no header line within the first {len(head):,} bytes; expected one of: {EXPECTED_HEADERS}"
        )
    if b"\x00" in raw:
        raise FeedFileError(f"{name}: not a CSV file (NUL bytes in the header: binary, or UTF-16 text?)")
    try:
        header_text = raw.decode("utf-8-sig" if line_number == 1 else "utf-8").removesuffix("\r")
    except UnicodeDecodeError as exc:
        raise _not_utf8(name, exc) from exc
    header_fields = [f.strip().strip('"').strip() for f in header_text.split(",")]
    detected = detect_kind(header_fields)
    if detected is None:
        raise FeedFileError(f"{name}: unrecognised header {excerpt(header_text)}; expected one of: {EXPECTED_HEADERS}")
    return (*detected, line_number)


def read_feed_file(path: str | Path, ingested_at_us: int | None = None) -> ParsedFeed:
    """Parse one file of any of the four kinds, all of it at once (tests, small files): loading
    takes a `FeedFile` block by block instead."""
    return FeedFile(path, ingested_at_us=ingested_at_us).parse_whole()


def parse_feed_bytes(data: bytes, path: Path, ingested_at_us: int | None = None) -> ParsedFeed:
    """Parse a file's bytes, all of them at once (see `FeedFile`, which gives the same rows)."""
    return FeedFile(path, ingested_at_us=ingested_at_us, data=data).parse_whole()


@dataclass(frozen=True)
class FeedChunk:
    """The records of one block of a file, parsed. `rejected` follows REJECTED_COLUMNS (the
    block's first MAX_REJECTED_KEPT, sorted by line); `rejected_by_reason` counts all of them."""

    rows: pl.DataFrame
    rejected: pl.DataFrame
    rejected_by_reason: pl.DataFrame  # reason, row_count
    rows_read: int


def _open_regular(path: Path) -> BinaryIO:
    return path.open("rb")


class FeedFile:
    """A feed file, recognised by its header, hashed, and parsed block by block.

    Opening it reads it once, in blocks: its header (in the first HEAD_BYTES), its SHA-256 and
    whether it ends with a newline, keeping none of it. `chunks()` then reads it again,
    READ_BLOCK_BYTES at a time cut at line ends, and yields each block's records parsed
    (`FeedChunk`), so that what exists at once is one block's bytes, lines and rows, whatever
    the file's size. It reads the `size` bytes the file had when opened (a writer appending
    meanwhile is not seen) and fails with FeedFileError if they no longer hash to `sha256`.

    A record of these feeds is a few dozen bytes, and three rules keep any input within that
    bound: a line longer than MAX_LINE_BYTES is rejected whole without being split (its first
    MAX_RAW_TEXT_CHARS kept), even when it spans blocks; a record that goes on over several lines
    (a quoted field holding newlines) past MAX_LINE_BYTES is rejected the same way; only the
    first MAX_REJECTED_KEPT rejected rows of a block keep their text (all are counted by reason).

    `opener` opens the path (the landing folder passes one that refuses links and devices);
    `data`, when given, is the file's content instead of the path's; `size`, when given, is how
    many of its bytes to read (the landing folder's, as it found the file complete).
    """

    def __init__(
        self,
        path: str | Path,
        opener: Callable[[Path], BinaryIO] = _open_regular,
        ingested_at_us: int | None = None,
        data: bytes | None = None,
        size: int | None = None,
    ):
        self.path = Path(path)
        self._opener = opener
        self._data = data
        self.ingested_at_us = time.time_ns() // 1000 if ingested_at_us is None else ingested_at_us
        hasher = hashlib.sha256()
        with self._open() as (handle, found_size):
            size = found_size if size is None else min(size, found_size)
            self.size = size
            head = handle.read(min(HEAD_BYTES, size))
            # The header first: a file that is not a feed is refused without reading the rest.
            self.kind, self.columns, self.header_number = header_kind(
                head, self.path.name, whole_file=size <= len(head)
            )
            hasher.update(head)
            for _block in _read_blocks(handle, size - len(head), hasher):
                pass  # each block is hashed as it is read
        self.sha256 = hasher.hexdigest()

    @contextmanager
    def _open(self) -> Iterator[tuple[BinaryIO, int]]:
        if self._data is not None:
            yield io.BytesIO(self._data), len(self._data)
            return
        try:
            handle = self._opener(self.path)
        except OSError as exc:
            raise FeedFileError.unreadable(self.path.name, exc) from exc
        with handle:
            try:
                yield handle, os.fstat(handle.fileno()).st_size
            except OSError as exc:
                raise FeedFileError.unreadable(self.path.name, exc) from exc

    def chunks(self) -> Iterator[FeedChunk]:
        """The file's records, parsed, a block at a time (at least one chunk, maybe empty)."""
        hasher = hashlib.sha256()
        with self._open() as (handle, _):
            head = handle.read(min(HEAD_BYTES, self.size))
            hasher.update(head)
            body_start = _line_end_offset(head, self.header_number)
            first = head[body_start:]
            del head
            raw = itertools.chain(
                [first] if first else [], _read_blocks(handle, self.size - body_start - len(first), hasher)
            )
            yielded = False
            for chunk in self._parse_blocks(_body_blocks(raw, self.header_number + 1, body_start)):
                yielded = True
                yield chunk
        if hasher.hexdigest() != self.sha256:
            raise FeedFileError(f"{self.path.name}: changed while being read; deliver it again once it is complete")
        if not yielded:
            yield FeedChunk(self._typed(_no_records()), _no_rejected(), _no_counts(), 0)

    def parse_whole(self) -> ParsedFeed:
        """All chunks gathered: the rows, the first MAX_REJECTED_KEPT rejected rows, every count."""
        chunks = list(self.chunks())
        return ParsedFeed(
            path=self.path,
            sha256=self.sha256,
            kind=self.kind,
            rows=pl.concat([c.rows for c in chunks]),
            rejected=pl.concat([c.rejected for c in chunks]).sort("line_number").head(MAX_REJECTED_KEPT),
            rows_read=sum(c.rows_read for c in chunks),
            rejected_by_reason=sum_counts([c.rejected_by_reason for c in chunks]),
        )

    def _typed(self, records: pl.DataFrame) -> pl.DataFrame:
        return _parse_records(records, self.kind, self.columns, False, self.ingested_at_us)[0]

    def _parse_blocks(self, blocks: Iterator[tuple[int, bytes, int, list[tuple[int, str]]]]) -> Iterator[FeedChunk]:
        """Blocks of whole lines -> parsed chunks, a quoted record open at a block's end carried
        into the next block (its lines while short, else only its head and length)."""
        carried: pl.DataFrame | None = None  # the lines of a record still open, within MAX_LINE_BYTES
        overlong: _LongRecord | None = None  # a record still open, past MAX_LINE_BYTES
        for (first_line, block, offset, long_lines), last_block in _last_flagged(blocks):
            extra = [_long_line_row(number, text) for number, text in long_lines]
            lines = physical_lines(block, self.path.name, first_line, offset)
            quoted = carried is not None or overlong is not None or b'"' in block
            del block
            if not quoted:
                records = lines.with_columns(pl.lit(False).alias("_unterminated"))
            else:
                if carried is not None:
                    lines, carried = pl.concat([carried, lines]), None
                records = csv_records(lines, start_open=overlong is not None)
                if overlong is not None and records.height:
                    continued, records = records.row(0, named=True), records.slice(1)
                    overlong = overlong.extended(continued["raw_text"])
                    if not continued["_unterminated"] or last_block:
                        extra.append(overlong.rejected_row(unterminated=bool(continued["_unterminated"])))
                        overlong = None
                if not last_block and records.height and records.item(-1, "_unterminated"):
                    tail = records.row(-1, named=True)
                    records = records.slice(0, records.height - 1)
                    if len(tail["raw_text"].encode()) <= MAX_LINE_BYTES:
                        carried = lines.filter(pl.col("line_number") >= tail["line_number"])
                    else:
                        overlong = _LongRecord(tail["line_number"], "").extended(tail["raw_text"], first=True)
            if last_block and overlong is not None:  # the file ended inside it
                extra.append(overlong.rejected_row(unterminated=True))
            del lines
            records = records.filter(pl.col("raw_text").str.strip_chars() != "")
            yield from self._parse_records_of_block(records, quoted, extra)

    def _parse_records_of_block(self, records: pl.DataFrame, quoted: bool, extra: list[dict]) -> Iterator[FeedChunk]:
        extra_rows = pl.DataFrame(extra, schema=REJECTED_COLUMNS) if extra else _no_rejected()
        slices = list(records.iter_slices(PARSE_CHUNK_ROWS)) or [records]
        for n, piece in enumerate(slices):
            rows, bad = _parse_records(piece, self.kind, self.columns, quoted, self.ingested_at_us)
            if n == 0 and extra_rows.height:
                bad = pl.concat([extra_rows, bad.cast(REJECTED_COLUMNS)])
            counts = bad.group_by("reason").agg(pl.len().cast(pl.Int64).alias("row_count"))
            yield FeedChunk(
                rows,
                bad.cast(REJECTED_COLUMNS).sort("line_number").head(MAX_REJECTED_KEPT),
                counts,
                piece.height + (extra_rows.height if n == 0 else 0),
            )


def sum_counts(counts: list[pl.DataFrame]) -> pl.DataFrame:
    """Rejected-row counts by reason (reason, row_count) added up, sorted by reason."""
    return (
        pl.concat([_no_counts(), *counts])
        .group_by("reason")
        .agg(pl.col("row_count").sum().cast(pl.Int64))
        .sort("reason")
    )


def _no_counts() -> pl.DataFrame:
    return pl.DataFrame(schema={"reason": pl.String, "row_count": pl.Int64})


def _no_rejected() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTED_COLUMNS)


def _no_records() -> pl.DataFrame:
    return pl.DataFrame(schema={"line_number": pl.Int64, "raw_text": pl.String, "_unterminated": pl.Boolean})


@dataclass(frozen=True)
class _LongRecord:
    """A record over several lines longer than MAX_LINE_BYTES: its first line, the first
    MAX_RAW_TEXT_CHARS of its text (lines joined by newlines) and how many characters it has."""

    line_number: int
    head: str
    chars: int = 0

    def extended(self, text: str, first: bool = False) -> _LongRecord:
        joined = text if first else "\n" + text
        head = self.head if len(self.head) >= MAX_RAW_TEXT_CHARS else (self.head + joined)[:MAX_RAW_TEXT_CHARS]
        return _LongRecord(self.line_number, head, self.chars + len(joined))

    def rejected_row(self, unterminated: bool) -> dict:
        over = self.chars - MAX_RAW_TEXT_CHARS
        text = f"{self.head}... ({over} more characters)" if over > 0 else self.head
        return {
            "line_number": self.line_number,
            "store_id": None,
            "raw_text": text.replace("\x00", "\\x00"),
            "reason": UNTERMINATED_REASON if unterminated else LONG_RECORD_REASON,
        }


def _long_line_row(line_number: int, text: str) -> dict:
    return {
        "line_number": line_number,
        "store_id": None,
        "raw_text": text.replace("\x00", "\\x00"),
        "reason": LONG_LINE_REASON,
    }


def _last_flagged(items: Iterator[T]) -> Iterator[tuple[T, bool]]:
    """Each item with whether it is the last one."""
    previous: T | None = None
    started = False
    for item in items:
        if started:
            yield previous, False  # type: ignore[misc]
        previous, started = item, True
    if started:
        yield previous, True  # type: ignore[misc]


def _read_blocks(handle: BinaryIO, remaining: int, hasher: Any = None) -> Iterator[bytes]:
    """Up to `remaining` more bytes of `handle`, READ_BLOCK_BYTES at a time (each hashed)."""
    while remaining > 0:
        block = handle.read(min(READ_BLOCK_BYTES, remaining))
        if not block:
            return
        remaining -= len(block)
        if hasher is not None:
            hasher.update(block)
        yield block


def _line_end_offset(data: bytes, lines: int) -> int:
    """The offset just after the `lines`-th newline of `data` (its length if there are fewer)."""
    offset = 0
    for _ in range(lines):
        end = data.find(b"\n", offset)
        if end == -1:
            return len(data)
        offset = end + 1
    return offset


def _long_line_text(head: bytes, length: int) -> str:
    """A long line as kept: its first MAX_RAW_TEXT_CHARS bytes, and how many more it had."""
    text = head[:MAX_RAW_TEXT_CHARS].decode("utf-8", "replace").removesuffix("\r")
    return f"{text}... ({length - MAX_RAW_TEXT_CHARS} more bytes)"


def _body_blocks(
    raw: Iterator[bytes], first_line: int, first_offset: int
) -> Iterator[tuple[int, bytes, int, list[tuple[int, str]]]]:
    """Raw blocks -> (number of the first line, whole lines, their offset in the file, long lines
    found: (line number, text kept)). A line longer than MAX_LINE_BYTES is left empty in place
    (line numbers stay), whether it lies inside a block or runs over several: only its first
    bytes and its length are kept while the rest of it is read."""
    pending = b""  # the start of a line whose end is not read yet
    line, offset = first_line, first_offset  # of the first line of `pending`
    skipping: list = []  # [line number, head bytes, length] of a long line whose end is not read yet
    found: list[tuple[int, str]] = []
    for data in raw:
        if skipping:
            end = data.find(b"\n")
            if end == -1:
                skipping[2] += len(data)
                offset += len(data)
                continue
            skipping[2] += end
            found.append((skipping[0], _long_line_text(skipping[1], skipping[2])))
            offset += end
            data = b"\n" + data[end + 1 :]  # the long line, emptied, keeps its number
            skipping = []
        data = pending + data if pending else data
        cut = data.rfind(b"\n") + 1
        block, pending = data[:cut], data[cut:]
        del data
        pending_line = line + block.count(b"\n")
        pending_offset = offset + len(block)
        if len(pending) > MAX_LINE_BYTES:
            skipping = [pending_line, pending[:MAX_RAW_TEXT_CHARS], len(pending)]
            pending_offset += len(pending)
            pending = b""
        if block:
            block, long_lines = _cut_long_lines(block, line)
            yield line, block, offset, found + long_lines
            found = []
        line, offset = pending_line, pending_offset
    if skipping:
        found.append((skipping[0], _long_line_text(skipping[1], skipping[2])))
    if pending or found:
        pending, long_lines = _cut_long_lines(pending, line)
        yield line, pending, offset, found + long_lines


def _cut_long_lines(data: bytes, first_line: int) -> tuple[bytes, list[tuple[int, str]]]:
    """`data` (whole lines numbered from `first_line`) with the lines longer than MAX_LINE_BYTES
    emptied, so line numbers stay, and (line number, text kept) of each. They are found in one
    vectorised pass over the bytes, before polars' line reader, which holds about three copies
    of a line it reads."""
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(data)]))
    long = np.flatnonzero(ends - starts > MAX_LINE_BYTES)
    if not len(long):
        return data, []
    found = []
    pieces, previous = [], 0
    for index in long.tolist():  # each is over 64 KiB of the file: few, whatever the file
        start, end = int(starts[index]), int(ends[index])
        pieces.append(data[previous:start])
        previous = end
        found.append((first_line + index, _long_line_text(data[start : start + MAX_RAW_TEXT_CHARS], end - start)))
    pieces.append(data[previous:])
    return b"".join(pieces), found


def _parse_records(
    body: pl.DataFrame, kind: str, columns: list[str], quoted: bool, ingested_at_us: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Records (`line_number`, `raw_text`, `_unterminated`) -> (typed rows, rejected rows)."""
    fields = _comma_led_fields(pl.col("raw_text")) if quoted else pl.col("raw_text").str.split(",")
    # Unquoting reads trimmed fields; without quotes, some columns are trimmed by the kind's parser.
    deferred = () if quoted else _TRIMMED_BY_PARSER.get(kind, ())
    body = body.with_columns(fields.alias("_fields")).with_columns(
        pl.col("_fields").list.len().alias("_n_fields"),
        *(
            _trim(pl.col("_fields").list.get(i, null_on_oob=True).str.slice(1 if quoted else 0), name, deferred).alias(
                name
            )
            for i, name in enumerate(columns)
        ),
    )
    if quoted:
        body = _unquote_columns(body, columns)
    parser = {POLLS: _parse_polls, HOURS: _parse_hours, TIMEZONES: _parse_timezones, SPECIAL: _parse_special}[kind]
    typed = parser(body, ingested_at_us)
    reason = (
        pl.when(pl.col("_unterminated"))
        .then(pl.lit("unterminated quoted field (a field that opens with a double quote must close with one)"))
        # Longer than a line may be: a record over several lines (a single line that long never
        # gets here), rejected like one carried across blocks, wherever the blocks cut the file.
        .when(pl.col("raw_text").str.len_bytes() > MAX_LINE_BYTES)
        .then(pl.lit(LONG_RECORD_REASON))
        .when(pl.col("_n_fields") != len(columns))
        .then(pl.format("expected {} fields, found {}", pl.lit(len(columns)), pl.col("_n_fields")))
        .when(pl.col("store_id").is_null() | (pl.col("store_id") == ""))
        .then(pl.lit("missing store_id"))
        .when(pl.col("store_id").str.contains(r"\p{Cc}"))
        .then(pl.lit("store_id contains a control character (a newline inside a quoted field, a NUL, a tab)"))
        .when(pl.col("store_id").str.contains(FORMULA_START))
        .then(pl.lit(FORMULA_REASON))
        .otherwise(pl.col("_reason"))
    )
    typed = typed.with_columns(reason.alias("_reason"))
    rejected = typed.filter(pl.col("_reason").is_not_null()).select(
        "line_number",
        # A record too long to be held whole keeps no store_id (when read in blocks, only its head is).
        _storable(
            _bounded(
                pl.when((pl.col("store_id") != "") & (pl.col("raw_text").str.len_bytes() <= MAX_LINE_BYTES)).then(
                    pl.col("store_id")
                ),
                MAX_STORE_ID_CHARS,
            )
        ).alias("store_id"),
        _storable(_bounded(pl.col("raw_text"))).alias("raw_text"),
        pl.col("_reason").alias("reason"),
    )
    good = typed.filter(pl.col("_reason").is_null()).drop(
        [c for c in typed.columns if c.startswith("_") or c == "raw_text"] + list(_RAW_ONLY[kind])
    )
    return good, rejected


def physical_lines(data: bytes, name: str, first_line: int = 1, offset: int = 0) -> pl.DataFrame:
    """A file's lines (`line_number` from 1, `raw_text`), as `text.split("\\n")` with one `\\r`
    off each line's end, less the empty string after a final newline. Polars' line reader splits
    in parallel and hands back a chunked column, so what follows runs on several cores; it
    refuses text that is not UTF-8, which the message then locates as Python's decoder does."""
    try:
        lines = pl.read_lines(data, name="raw_text", row_index_name="line_number", row_index_offset=first_line)
    except pl.exceptions.ComputeError:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(name, exc, offset) from exc
        raise
    return lines.with_columns(pl.col("line_number").cast(pl.Int64))


def _not_utf8(name: str, exc: UnicodeDecodeError, offset: int = 0) -> FeedFileError:
    return FeedFileError(f"{name}: not a UTF-8 CSV file (byte {offset + exc.start} cannot be decoded)")


def _bounded(text: pl.Expr, limit: int | None = None) -> pl.Expr:
    limit = MAX_RAW_TEXT_CHARS if limit is None else limit
    over = text.str.len_chars().cast(pl.Int64) - limit
    return (
        pl.when(over > 0).then(pl.format("{}... ({} more characters)", text.str.slice(0, limit), over)).otherwise(text)
    )


def _storable(text: pl.Expr) -> pl.Expr:
    """PostgreSQL text cannot hold NUL: it is kept visibly as `\\x00`."""
    return text.str.replace_all("\x00", "\\x00", literal=True)


# Raw text columns replaced by typed ones in the parsed output.
_RAW_ONLY = {
    POLLS: ("timestamp_utc",),
    HOURS: ("start_time_local", "end_time_local"),
    TIMEZONES: (),
    SPECIAL: ("date_local", "start_time_local", "end_time_local"),
}


def _first_reason(*checks: tuple[pl.Expr, str]) -> pl.Expr:
    """The first failing check's message, or null when every check passes."""
    expr: Then | ChainedThen = pl.when(checks[0][0]).then(pl.lit(checks[0][1]))
    for failed, message in checks[1:]:
        expr = expr.when(failed).then(pl.lit(message))
    return expr.otherwise(pl.lit(None, dtype=pl.String))


# --- CSV records and fields (RFC 4180, as Python's csv module reads it) --------------------

# A field that opens with a quote runs to the next quote not doubled (`""` is one quote);
# anything after that closing quote up to the comma is kept literally. Any other field runs
# to the next comma and its quotes are plain characters.
_QUOTED_FIELD = r'"(?:[^"]|"")*"(?:[^,"][^,]*)?'
_PLAIN_FIELD = r'(?:[^,"][^,]*)?'
_FIELD = f"(?:{_QUOTED_FIELD}|{_PLAIN_FIELD})"
_OPEN_TAIL = r'"(?:[^"]|"")*'  # a quoted field still open at the end of the line
# Does a line leave a quoted field open, if it starts outside one / inside one?
_OPENS_FROM_OUTSIDE = f"^(?:{_FIELD},)*{_OPEN_TAIL}$"
_STAYS_OPEN_FROM_INSIDE = f'^(?:(?:[^"]|"")*$|(?:[^"]|"")*"(?:[^,"][^,]*)?,(?:{_FIELD},)*{_OPEN_TAIL}$)'


def csv_records(lines: pl.DataFrame, start_open: bool = False) -> pl.DataFrame:
    """Physical lines (`line_number`, `raw_text`) -> CSV records: a record continues on the next
    line while a quoted field is open. Each record keeps the number of its first line, its lines
    joined with newlines, and `_unterminated` (a quote still open at the end of the file).

    Whether a line leaves a quote open depends only on whether it starts inside one, so each
    line is a map of that one bit: unchanged (no quote), set (same result either way) or
    flipped. The state after each line is then the last set value, flipped by the number of
    flips since: two regular expressions and cumulative sums, no loop over lines.

    `start_open`: the first line continues a record that a quoted field left open (a file read
    in blocks); the lines up to that record's end come first, as one record.
    """
    text = pl.col("raw_text")
    has_quote = text.str.contains('"', literal=True)
    lines = lines.with_columns(
        (has_quote & text.str.contains(_OPENS_FROM_OUTSIDE)).alias("_from_outside"),
        (~has_quote | text.str.contains(_STAYS_OPEN_FROM_INSIDE)).alias("_from_inside"),
    )  # columns, not expressions: each regex runs once
    from_outside, from_inside = pl.col("_from_outside"), pl.col("_from_inside")
    sets = from_outside == from_inside
    lines = lines.with_columns(
        sets.alias("_sets"), (from_outside & ~from_inside).cast(pl.UInt32).cum_sum().alias("_flips")
    )
    sets, flips = pl.col("_sets"), pl.col("_flips")
    base = pl.when(sets).then(from_outside).forward_fill().fill_null(start_open)
    flips_since_set = flips - pl.when(sets).then(flips).forward_fill().fill_null(0)
    lines = lines.with_columns((base ^ (flips_since_set % 2 == 1)).alias("_open_after"))
    starts = ~pl.col("_open_after").shift(1, fill_value=start_open)
    lines = lines.select("line_number", "raw_text", starts.cum_sum().alias("_record"), "_open_after")
    if lines.height == 0 or lines.get_column("_record").max() == lines.height:  # one line per record
        return lines.select("line_number", "raw_text", pl.col("_open_after").alias("_unterminated"))
    return (
        lines.group_by("_record", maintain_order=True)
        .agg(
            pl.col("line_number").first(),
            pl.col("raw_text").str.join("\n"),
            pl.col("_open_after").last().alias("_unterminated"),
        )
        .drop("_record")
    )


def _comma_led_fields(record: pl.Expr) -> pl.Expr:
    """The record's fields, each with the comma before it (so that no match is empty)."""
    return (pl.lit(",") + record).str.extract_all(f",{_FIELD}")


def csv_fields(record: pl.Expr) -> pl.Expr:
    """A record's fields as written (quotes still on)."""
    return _comma_led_fields(record).list.eval(pl.element().str.slice(1))


def unquote(field: pl.Expr) -> pl.Expr:
    """`"a""b"c` -> `a"b` + `c`; a field not opening with a quote is returned as it is."""
    parts = field.str.extract_groups(r'(?s)^"((?:[^"]|"")*)"(.*)$')
    inner = parts.struct.field("1").str.replace_all('""', '"', literal=True) + parts.struct.field("2")
    return pl.when(field.str.starts_with('"')).then(pl.coalesce(inner, field.str.strip_chars('"'))).otherwise(field)


# Columns whose kind's parser trims them itself, on the few rows not in the feed's own spelling
# (the parser's trimming is idempotent: quoted files arrive trimmed already).
_TRIMMED_BY_PARSER = {POLLS: ("status", "timestamp_utc")}


def _trim(field: pl.Expr, column: str, deferred: tuple[str, ...] = ()) -> pl.Expr:
    """Surrounding whitespace off (unless `deferred` names the column). A store_id is trimmed
    of spaces only, so a tab or a newline in it stays visible to the control-character rule."""
    if column in deferred:
        return field
    return field.str.strip_chars(" ") if column == "store_id" else field.str.strip_chars()


def _unquote_columns(body: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Unquote every column: `"x"` by slicing off its quotes, and the rare field holding more
    quotes (`""`, text after the closing quote) through `unquote`, on those rows only."""
    quoted = [pl.col(c).str.starts_with('"') for c in columns]
    plain_quotes = [
        pl.col(c).str.ends_with('"') & (pl.col(c).str.count_matches('"', literal=True) == 2) for c in columns
    ]
    body = body.with_columns(
        pl.any_horizontal(q & ~p for q, p in zip(quoted, plain_quotes, strict=True)).alias("_tricky")
    )
    tricky = body.filter("_tricky")
    body = body.with_columns(
        _trim(pl.when(q).then(pl.col(c).str.strip_prefix('"').str.strip_suffix('"')).otherwise(pl.col(c)), c).alias(c)
        for c, q in zip(columns, quoted, strict=True)
    )
    if tricky.height:
        body = body.update(
            tricky.select("line_number", *(_trim(unquote(pl.col(c)), c).alias(c) for c in columns)), on="line_number"
        )
    return body.drop("_tricky")


# --- status polls -------------------------------------------------------------------------

# 2023-01-22 12:09:39.388884 UTC | 2023-01-22T12:09:39Z | ...+00:00 | ...-05:00 | no suffix
TIMESTAMP_PATTERN = (
    r"^(?i)(\d{4}-\d{2}-\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d{1,6}))?"
    r"\s*(UTC|Z|([+-])(\d{2}):?(\d{2}))?$"
)
MAX_OFFSET_MINUTES = 14 * 60
STATUSES = ("active", "inactive")
BAD_TIMESTAMP = "bad timestamp_utc (expected e.g. 2023-01-22 12:09:39.388884 UTC)"


def _timestamp_parts(text: pl.Expr) -> dict[str, pl.Expr]:
    parts = text.str.extract_groups(TIMESTAMP_PATTERN)
    field = parts.struct.field
    as_int = lambda name: field(name).cast(pl.Int64, strict=False)  # noqa: E731
    return {
        "wall_text": pl.concat_str(
            field("1"), pl.lit(" "), field("2"), pl.lit(":"), field("3"), pl.lit(":"), field("4").fill_null("00")
        ),
        "date": field("1"),
        "hour": as_int("2"),
        "minute": as_int("3"),
        "second": as_int("4").fill_null(0),
        "fraction_us": field("5").str.pad_end(6, "0").cast(pl.Int64, strict=False).fill_null(0),
        "suffix": field("6"),
        "offset_minutes": (as_int("8") * 60 + as_int("9")) * pl.when(field("7") == "-").then(-1).otherwise(1),
        "offset_minute_part": as_int("9"),
    }


def parse_timestamp_utc(text: pl.Expr) -> pl.Expr:
    """Timestamp text -> microseconds since the epoch (UTC); null unless it names a real
    instant (SPEC §1): seconds 00-59 (no leap second `:60`), an offset within ±14:00."""
    p = _timestamp_parts(text)
    wall = p["wall_text"].str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False)
    offset_minutes = (
        pl.when(p["suffix"].is_null() | p["suffix"].str.to_uppercase().is_in(["UTC", "Z"]))
        .then(pl.lit(0, dtype=pl.Int64))
        .otherwise(p["offset_minutes"])
    )
    valid = (
        (p["hour"] <= 23)
        & (p["minute"] <= 59)
        & (p["second"] <= 59)
        & (offset_minutes.abs() <= MAX_OFFSET_MINUTES)
        & (p["offset_minute_part"].fill_null(0) <= 59)
    )
    return pl.when(valid).then(wall.dt.epoch("us") + p["fraction_us"] - offset_minutes * 60_000_000)


def timestamp_problem(text: pl.Expr) -> pl.Expr:
    """Why a timestamp that `parse_timestamp_utc` refuses is not a real instant (for messages)."""
    p = _timestamp_parts(text)
    return (
        pl.when(p["date"].is_null())
        .then(pl.lit(BAD_TIMESTAMP))
        .when((p["hour"] > 23) | (p["minute"] > 59))
        .then(pl.lit("bad timestamp_utc: hours must be 00-23 and minutes 00-59"))
        .when(p["second"] > 59)
        .then(pl.lit("bad timestamp_utc: seconds must be 00-59 (a leap second :60 is not accepted)"))
        .when((p["offset_minutes"].abs() > MAX_OFFSET_MINUTES) | (p["offset_minute_part"] > 59))
        .then(pl.lit("bad timestamp_utc: UTC offset beyond ±14:00"))
        .otherwise(pl.lit(BAD_TIMESTAMP + ": no such date"))
    )


# The real feed's own spelling, e.g. `2023-01-22 12:09:39.388884 UTC`: checked with an ASCII-only
# match (no capture groups, `[0-9]` rather than Unicode `\d`) and read by slicing: the 19 wall-clock
# characters through strptime's fixed-width format, the fraction as an integer. Hours, minutes and
# seconds are range-checked by the shape (strptime would roll `:60` over, and it reads `+023` as
# a year). Everything the shape refuses goes through the general pattern, which accepts it or says
# why not: the shape only ever picks texts the general pattern reads the same way.
FEED_TIMESTAMP_SHAPE = (
    r"(?-u)^[0-9]{4}-[0-9]{2}-[0-9]{2} (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})? UTC$"
)


def _feed_timestamp_utc(text: pl.Expr) -> pl.Expr:
    """µs since the epoch for a text of the feed's own spelling, null for any other text."""
    wall = text.str.slice(0, 19).str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
    fraction = text.str.slice(20).str.head(-4)  # between `.` and ` UTC`; empty without a fraction
    fraction_us = fraction.str.pad_end(6, "0").cast(pl.Int64, strict=False)
    return pl.when(text.str.contains(FEED_TIMESTAMP_SHAPE)).then(wall.dt.epoch("us") + fraction_us)


def parse_timestamps_utc(frame: pl.DataFrame, text_col: str, out_col: str, trim: bool = False) -> pl.DataFrame:
    """Add `out_col` (µs, UTC) parsed from `text_col`: the feed's spelling on a fast path, every
    other accepted spelling (and every error) through `parse_timestamp_utc`. Same results.
    With `trim`, `text_col` is first trimmed of surrounding whitespace: on the rows off the fast
    path only, as the feed's spelling has none."""
    text = pl.col(text_col)
    frame = frame.with_columns(_feed_timestamp_utc(text).alias(out_col))
    rest = frame.select((pl.col(out_col).is_null() & text.is_not_null()).arg_true()).to_series()
    if rest.len():  # the general pattern, on those rows only
        slow = frame[rest].select(text.str.strip_chars() if trim else text)
        slow = slow.with_columns(parse_timestamp_utc(text).alias(out_col))
        frame = frame.with_columns(
            frame.get_column(text_col).scatter(rest, slow.get_column(text_col)),
            frame.get_column(out_col).scatter(rest, slow.get_column(out_col)),
        )
    return frame


def _iso(at_us: int) -> str:
    return dt.datetime.fromtimestamp(at_us / 1_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_polls(body: pl.DataFrame, ingested_at_us: int) -> pl.DataFrame:
    # Status and timestamp arrive untrimmed (_TRIMMED_BY_PARSER): rows in the feed's own
    # spelling need neither trimming nor lowercasing, so only the others are normalised.
    status = pl.col("status")
    odd = body.select((~status.is_in(STATUSES)).arg_true()).to_series()  # null status: left null
    if odd.len():
        normalised = body[odd].select(status.str.strip_chars().str.to_lowercase()).to_series()
        body = body.with_columns(body.get_column("status").scatter(odd, normalised))
    body = parse_timestamps_utc(body, "timestamp_utc", "polled_at_us", trim=True)
    latest = ingested_at_us + FUTURE_TOLERANCE_US
    body = body.with_columns(
        _first_reason(
            (pl.col("timestamp_utc").is_null() | (pl.col("timestamp_utc") == ""), "missing timestamp_utc"),
            (pl.col("polled_at_us").is_null(), BAD_TIMESTAMP),
            (
                pl.col("polled_at_us") > latest,
                f"timestamp_utc is from the future: more than 1 hour after the file was ingested ({_iso(ingested_at_us)})",
            ),
            (~pl.col("status").is_in(STATUSES), "unknown status (expected active or inactive)"),
        ).alias("_reason")
    )
    bad = body.filter(pl.col("_reason") == BAD_TIMESTAMP)
    if bad.height:  # say what is wrong, on the few rows concerned only
        body = body.update(
            bad.select("line_number", timestamp_problem(pl.col("timestamp_utc")).alias("_reason")), on="line_number"
        )
    return body


# --- business hours -----------------------------------------------------------------------

TIME_OF_DAY_PATTERN = r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$"


def parse_time_of_day_us(text: pl.Expr) -> pl.Expr:
    """`HH:MM` or `HH:MM:SS[.ffffff]` -> microseconds after midnight, null when invalid."""
    parts = text.str.extract_groups(TIME_OF_DAY_PATTERN)
    hours = parts.struct.field("1").cast(pl.Int64, strict=False)
    minutes = parts.struct.field("2").cast(pl.Int64, strict=False)
    seconds = parts.struct.field("3").cast(pl.Int64, strict=False).fill_null(0)
    fraction = parts.struct.field("4").str.pad_end(6, "0").cast(pl.Int64, strict=False).fill_null(0)
    valid = (hours <= 23) & (minutes <= 59) & (seconds <= 59)
    return pl.when(valid).then(((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + fraction)


def _parse_hours(body: pl.DataFrame, _ingested_at_us: int) -> pl.DataFrame:
    day_ok = pl.col("day_of_week").str.contains(r"^\d{1,2}$")
    body = body.with_columns(
        pl.when(day_ok).then(pl.col("day_of_week").cast(pl.Int64, strict=False)).alias("_day"),
        parse_time_of_day_us(pl.col("start_time_local")).alias("start_time_us"),
        parse_time_of_day_us(pl.col("end_time_local")).alias("end_time_us"),
    )
    body = body.with_columns(
        _first_reason(
            (
                pl.col("_day").is_null() | (pl.col("_day") > 6),
                "day of week must be an integer 0 (Monday) to 6 (Sunday)",
            ),
            (
                pl.col("start_time_us").is_null(),
                "bad start_time_local (expected HH:MM or HH:MM:SS[.ffffff], 00:00-23:59:59)",
            ),
            (
                pl.col("end_time_us").is_null(),
                "bad end_time_local (expected HH:MM or HH:MM:SS[.ffffff], 00:00-23:59:59)",
            ),
        ).alias("_reason")
    )
    return body.with_columns(pl.col("_day").cast(pl.Int8, strict=False).alias("day_of_week"))


# --- special hours (SPEC §4a) ---------------------------------------------------------------

BAD_DATE = "bad date (expected a real calendar date YYYY-MM-DD)"
BAD_TIME = (
    "bad time (expected HH:MM or HH:MM:SS[.ffffff], 00:00-23:59:59, for both times; "
    "both empty means closed all that date)"
)


def _parse_special(body: pl.DataFrame, _ingested_at_us: int) -> pl.DataFrame:
    """store_id, local_date, start_time_us, end_time_us; both times null on a closed row."""
    text = pl.col("date_local")
    blank = lambda column: pl.col(column).is_null() | (pl.col(column) == "")  # noqa: E731
    closed = blank("start_time_local") & blank("end_time_local")
    body = body.with_columns(
        pl.when(text.str.contains(r"^\d{4}-\d{2}-\d{2}$"))
        .then(text.str.to_date("%Y-%m-%d", strict=False))
        .alias("local_date"),
        parse_time_of_day_us(pl.col("start_time_local")).alias("start_time_us"),
        parse_time_of_day_us(pl.col("end_time_local")).alias("end_time_us"),
    )
    times_bad = ~closed & (pl.col("start_time_us").is_null() | pl.col("end_time_us").is_null())
    return body.with_columns(
        _first_reason((pl.col("local_date").is_null(), BAD_DATE), (times_bad, BAD_TIME)).alias("_reason")
    )


# --- timezones ----------------------------------------------------------------------------


@cache
def is_known_timezone(name: str) -> bool:
    """True for IANA names that both zoneinfo and polars can convert with."""
    if name not in zoneinfo.available_timezones():
        return False
    try:
        pl.Series([0], dtype=pl.Datetime("us")).dt.replace_time_zone(name)
    except Exception:  # polars' tz database may lag behind the system's
        return False
    return True


def _parse_timezones(body: pl.DataFrame, _ingested_at_us: int) -> pl.DataFrame:
    names = body.get_column("timezone_str").drop_nulls().unique().to_list()
    known = [n for n in names if is_known_timezone(n)]  # one check per distinct name
    return body.with_columns(
        _first_reason(
            (pl.col("timezone_str").is_null() | (pl.col("timezone_str") == ""), "missing timezone_str"),
            (
                ~pl.col("timezone_str").is_in(known),
                "unknown timezone name (expected an IANA name such as America/Chicago)",
            ),
        ).alias("_reason")
    )
