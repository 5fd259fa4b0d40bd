"""Reading delimited text files (plain or gzip) defensively: every defect is located and named.

A truncated gzip stream keeps its intact prefix; bytes that are not UTF-8 mark their line. The
caller decides which days a defect spoils, so one bad file or line never hides other days.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aqi_assets.core.data.sources.base import SourceError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileDefect:
    """Something wrong inside a file: where (1-based line, byte offset) and what."""

    path: str
    line: int | None
    byte_offset: int | None
    message: str

    def describe(self) -> str:
        where = f"line {self.line}" if self.line is not None else "end of file"
        if self.byte_offset is not None:
            where += f", byte {self.byte_offset}"
        return f"{Path(self.path).name} ({where}): {self.message}"


@dataclass
class TextTable:
    """A file's rows as text (every column ``str``/NaN), the defects found, and where it ended."""

    path: str
    frame: pd.DataFrame
    truncated: bool = False
    defects: list[FileDefect] = field(default_factory=list)
    #: 0-based frame row indices whose line held a defect (e.g. invalid UTF-8)
    defective_rows: dict[int, FileDefect] = field(default_factory=dict)


def read_file_bytes(path: Path) -> tuple[bytes, FileDefect | None]:
    """The file's (decompressed) bytes; a truncated/corrupt gzip yields its readable prefix."""
    raw = path.read_bytes()
    if not path.name.endswith(".gz"):
        return raw, None
    out = bytearray()
    pending = raw
    try:
        while pending:
            inflater = zlib.decompressobj(wbits=31)  # gzip framing; loop for multi-member files
            for i in range(0, len(pending), _CHUNK):
                out += inflater.decompress(pending[i:i + _CHUNK])
            if not inflater.eof:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            pending = inflater.unused_data
    except (EOFError, zlib.error) as exc:
        cut = out.rfind(b"\n") + 1  # keep only complete lines of the readable prefix
        return bytes(out[:cut]), FileDefect(
            str(path), None, len(raw),
            f"truncated or corrupt gzip stream ({exc}); {cut:,} decompressed bytes readable",
        )
    return bytes(out), None


def read_text_table(path: Path, required_columns: tuple[str, ...]) -> TextTable:
    """Parse ``path`` as CSV into text columns, locating truncation and non-UTF-8 lines.

    Raises ``SourceError`` when nothing usable is there: empty file, unreadable header, or a
    required column missing (named).
    """
    path = Path(path)
    try:
        data, truncation = read_file_bytes(path)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc})") from exc
    if not data.strip():
        detail = f"; {truncation.message}" if truncation else ""
        raise SourceError(f"{path}: file is empty (no header, no rows){detail}")

    lines = data.split(b"\n")
    defective_lines: dict[int, FileDefect] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        decoded, offset = [], 0
        for number, line in enumerate(lines, start=1):
            try:
                decoded.append(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                defective_lines[number] = FileDefect(
                    str(path), number, offset + exc.start,
                    f"bytes that are not UTF-8 ({line[exc.start:exc.start + 4]!r})",
                )
                decoded.append(line.decode("utf-8", errors="replace"))
            offset += len(line) + 1
        text = "\n".join(decoded)
    if 1 in defective_lines:
        raise SourceError(f"{defective_lines[1].describe()} in the header line")

    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, na_values=["NA", "", "NaN", "nan"],
        )
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"{path}: file is empty (no header, no rows)") from exc
    except pd.errors.ParserError as exc:
        raise SourceError(f"{path}: not a readable CSV table ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required_columns if c not in frame.columns]
    if missing:
        raise SourceError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(frame.columns)})"
        )
    if frame.empty and truncation is None:
        raise SourceError(f"{path}: file has a header but no rows")

    table = TextTable(str(path), frame, truncated=truncation is not None)
    if truncation is not None:
        table.defects.append(truncation)
    # a data line N (1-based, header is line 1) is frame row N - 2 when no blank lines intervene
    for number, defect in defective_lines.items():
        table.defects.append(defect)
        if 0 <= number - 2 < len(frame):
            table.defective_rows[number - 2] = defect
    return table
