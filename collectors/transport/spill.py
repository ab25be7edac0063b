"""A size-bounded local spill file for events the broker could not take yet.

When the emitter's memory queue fills while the broker is unreachable, its
background thread moves the oldest queued events here; once the broker
answers they are replayed first, oldest first. The file survives the process:
an emitter opened on the same path replays what an earlier one left behind.

Format: a sequence of records, each ``>IIII`` header (CRC-32 of the payload,
topic, key and value lengths in bytes) followed by the payload
``topic + key + value``. A torn tail (a crash mid-write) or a corrupt span (a
flipped byte) is moved to ``<path>.corrupt`` on open, never silently discarded,
and the records after it are kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import threading
import zlib
from pathlib import Path

log = logging.getLogger(__name__)
_HEADER = struct.Struct(">IIII")
Record = tuple[str, bytes, bytes]  # topic, key, value
_MAX_TOPIC = 249  # Kafka's limit on a topic name


def _record_end(data: bytes, pos: int) -> int | None:
    """End offset of a valid record starting at ``pos`` (header parses, CRC matches), or None."""
    if pos + _HEADER.size > len(data):
        return None
    crc, lt, lk, lv = _HEADER.unpack_from(data, pos)
    end = pos + _HEADER.size + lt + lk + lv
    if lt == 0 or lt > _MAX_TOPIC or end > len(data):
        return None
    return end if zlib.crc32(data[pos + _HEADER.size : end]) == crc else None


class SpillFile:
    """Append-only record file with a byte bound, read back in FIFO order.

    Parameters
    ----------
    path : str or Path
        Created if missing (with its parent directory).
    max_bytes : int
        Bound on the file's size, bytes; :meth:`append` refuses records beyond it.

    Raises
    ------
    ValueError
        ``max_bytes`` < 1.
    OSError
        The file cannot be created or opened.
    """

    def __init__(self, path: str | Path, max_bytes: int = 256 * 2**20) -> None:
        if int(max_bytes) < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a+b")  # noqa: SIM115 - closed in close()
        self._read_pos = 0
        self._unread = 0
        self._recover()

    def _recover(self) -> None:
        """Count the records on disk; move corrupt spans aside and keep every good record.

        A corrupt span (a torn tail, a flipped byte) is skipped by resynchronising on
        the next offset where a header parses and its CRC-32 matches, so one bad
        byte costs one record, not every record after it.
        """
        self._file.seek(0)
        data = self._file.read()
        good, bad, pos = [], [], 0
        while pos < len(data):
            end = _record_end(data, pos)
            if end is not None:
                good.append((pos, end))
                pos = end
                continue
            nxt = pos + 1
            while nxt < len(data) and _record_end(data, nxt) is None:
                nxt += 1
            bad.append((pos, nxt))
            pos = nxt
        if bad:
            corrupt = self.path.with_name(self.path.name + ".corrupt")
            with open(corrupt, "ab") as fh:
                for start, stop in bad:
                    fh.write(data[start:stop])
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "wb") as fh:
                for start, stop in good:
                    fh.write(data[start:stop])
                fh.flush()
                os.fsync(fh.fileno())
            self._file.close()
            os.replace(tmp, self.path)
            self._file = open(self.path, "a+b")  # noqa: SIM115 - closed in close()
            lost = sum(stop - start for start, stop in bad)
            log.warning("spill %s: %d corrupt bytes in %d span(s) moved to %s; %d records kept",
                        self.path, lost, len(bad), corrupt, len(good))  # fmt: skip
        self._unread = len(good)

    @property
    def unread(self) -> int:
        """Records appended and not yet read back."""
        return self._unread

    @property
    def size_bytes(self) -> int:
        """Current size of the file, bytes (including records already read back)."""
        with self._lock:
            return self.path.stat().st_size if self._file.closed else self._file.seek(0, 2)

    def append(self, topic: str, key: bytes, value: bytes) -> bool:
        """Write one record and flush it to the OS; False if it would exceed ``max_bytes``."""
        t = topic.encode("utf-8")
        payload = t + key + value
        record = _HEADER.pack(zlib.crc32(payload), len(t), len(key), len(value)) + payload
        with self._lock:
            if self._file.closed:
                return False
            end = self._file.seek(0, 2)  # end of file
            if end + len(record) > self.max_bytes:
                return False
            self._file.write(record)
            self._file.flush()
            self._unread += 1
        return True

    def read(self, max_records: int) -> list[Record]:
        """Up to ``max_records`` unread records, oldest first; they count as read."""
        out: list[Record] = []
        with self._lock:
            if self._file.closed:
                return out
            self._file.seek(self._read_pos)
            while len(out) < max_records and self._unread > 0:
                header = self._file.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                _, lt, lk, lv = _HEADER.unpack(header)
                payload = self._file.read(lt + lk + lv)
                out.append(
                    (payload[:lt].decode("utf-8"), payload[lt : lt + lk], payload[lt + lk :])
                )
                self._read_pos = self._file.tell()
                self._unread -= 1
        return out

    def compact(self) -> None:
        """Drop the records already read back; call only when none of them is still in flight.

        Until then they stay on disk, so a crash replays them (at-least-once).
        The unread tail is copied to a temporary file that replaces this one.
        """
        with self._lock:
            if self._file.closed or self._read_pos == 0:
                return
            if self._unread == 0:
                self._file.truncate(0)
            else:
                tmp = self.path.with_name(self.path.name + ".tmp")
                self._file.seek(self._read_pos)
                with open(tmp, "wb") as out:
                    shutil.copyfileobj(self._file, out)
                self._file.close()
                os.replace(tmp, self.path)
                self._file = open(self.path, "a+b")  # noqa: SIM115
            self._read_pos = 0

    def close(self) -> None:
        """Close the file; unread records stay on disk for the next emitter. Idempotent."""
        with self._lock:
            if not self._file.closed:
                self._file.close()
