"""Bounded reading of zipped and plain CSV attachments (never extracted to disk).

Bounds: at most ``MAX_ENTRIES`` zip members are looked at, ``MAX_UNZIPPED`` decompressed bytes in
total (each member is read in streaming mode and cut at the remaining budget, so a zip bomb stops
at the cap), nested archives are not opened, at most ``MAX_ROWS`` CSV rows are read.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator

MAX_UNZIPPED = 64 * 1024 * 1024
MAX_ENTRIES = 32
MAX_ROWS = 500_000
IP_COLUMNS = ("ip", "src_ip", "source_ip", "ip_address", "ipaddress", "src", "source")


def unzip(data: bytes, warnings: list[str]) -> list[tuple[str, bytes]]:
    """(name, bytes) of the archive's files, within the bounds above."""
    out: list[tuple[str, bytes]] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        warnings.append(f"unreadable zip attachment: {exc.__class__.__name__}")
        return out
    if len(infos) > MAX_ENTRIES:
        warnings.append(f"zip has {len(infos)} entries; only the first {MAX_ENTRIES} read")
    budget = MAX_UNZIPPED
    for info in infos[:MAX_ENTRIES]:
        if info.is_dir():
            continue
        if info.filename.lower().endswith((".zip", ".gz", ".7z", ".rar", ".tar")):
            warnings.append(f"nested archive {info.filename!r} not opened")
            continue
        try:
            with archive.open(info) as handle:
                chunk = handle.read(budget + 1)
        except (zipfile.BadZipFile, RuntimeError, ValueError, OSError, EOFError, NotImplementedError) as exc:
            warnings.append(f"zip entry {info.filename!r} unreadable: {exc.__class__.__name__}")
            continue
        if len(chunk) > budget:
            warnings.append(f"zip content exceeds {MAX_UNZIPPED} bytes decompressed; cut at the cap")
            out.append((info.filename, chunk[:budget]))
            break
        budget -= len(chunk)
        out.append((info.filename, chunk))
    return out


def csv_rows(text: str, warnings: list[str]) -> Iterator[dict[str, str]]:
    """Rows of a CSV with a header line, keys lower-cased; stops at MAX_ROWS or a malformed line."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().strip('"').lower() for h in next(reader)]
        for count, row in enumerate(reader):
            if count >= MAX_ROWS:
                warnings.append(f"CSV has more than {MAX_ROWS} rows; the rest is not read")
                return
            if row:
                yield dict(zip(header, row, strict=False))
    except StopIteration:
        return
    except csv.Error as exc:
        warnings.append(f"CSV stopped at a malformed line: {exc}")


def csv_records(text: str, warnings: list[str]) -> Iterator[tuple[str, dict[str, str], str]]:
    """(header line, row keyed by lower-case column, the row's own raw line(s)) for each row of a CSV.

    The raw text is exactly the line(s) the csv reader consumed for the row (a quoted field may span
    lines), so an incident's evidence is its own row and never a neighbour's. Bounded like ``csv_rows``.
    """
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(text):
            consumed.append(line)
            yield line

    reader = csv.reader(lines())
    try:
        header = [h.strip().strip('"').lower() for h in next(reader)]
        header_line = "".join(consumed).rstrip("\r\n")
        consumed.clear()
        for count, row in enumerate(reader):
            raw = consumed[0] if len(consumed) == 1 else "".join(consumed)
            consumed.clear()
            if count >= MAX_ROWS:
                warnings.append(f"CSV has more than {MAX_ROWS} rows; the rest is not read")
                return
            if row:
                yield header_line, dict(zip(header, row, strict=False)), raw.rstrip("\r\n")
    except StopIteration:
        return
    except csv.Error as exc:
        warnings.append(f"CSV stopped at a malformed line: {exc}")


def ip_column(header_line: str) -> str | None:
    """The name of the column holding the reported IP, from the header line."""
    names = [h.strip().strip('"').lower() for h in header_line.split(",")]
    return next((c for c in IP_COLUMNS if c in names), None)


def csv_files(part_name: str, data: bytes, warnings: list[str]) -> list[tuple[str, str]]:
    """(file name, text) of the CSV files in an attachment, zipped or not."""
    if data[:4] == b"PK\x03\x04" or part_name.lower().endswith(".zip"):
        members = unzip(data, warnings)
    else:
        members = [(part_name, data[:MAX_UNZIPPED])]
    out = []
    for name, content in members:
        text = content.decode("utf-8-sig", "replace")
        if ip_column(text[:4096].split("\n", 1)[0]):
            out.append((name, text))
    return out
