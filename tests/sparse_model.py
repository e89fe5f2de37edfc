"""The in-memory model of a sparse file that the tmpfs model tests compare against."""

from __future__ import annotations

PAGE = 4096
KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE = 0x01, 0x02, 0x10
FALLOCATE_MODES = (0, KEEP_SIZE, PUNCH_HOLE | KEEP_SIZE, ZERO_RANGE, ZERO_RANGE | KEEP_SIZE)


class Model:
    """The bytes of a file and the pages that hold data (all others are holes)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.pages: set[int] = set()

    @property
    def size(self) -> int:
        return len(self.data)

    def write(self, off: int, buf: bytes) -> None:
        if off > self.size:
            self.data.extend(bytes(off - self.size))
        self.data[off:off + len(buf)] = buf
        self.pages.update(range(off // PAGE, (off + len(buf) - 1) // PAGE + 1))

    def zero(self, start: int, end: int) -> None:
        """A hole over [start, end): covered pages go, a page past the end of file counts as
        covered, partly covered pages stay data."""
        if start >= end:
            return
        self.data[start:min(end, self.size)] = bytes(max(0, min(end, self.size) - start))
        for i in [i for i in self.pages if i * PAGE < end and start < (i + 1) * PAGE]:
            if start <= i * PAGE and ((i + 1) * PAGE <= end or end >= self.size):
                self.pages.discard(i)

    def truncate(self, size: int) -> None:
        if size < self.size:
            self.zero(size, self.size)
            del self.data[size:]
        else:
            self.data.extend(bytes(size - self.size))

    def fallocate(self, mode: int, off: int, length: int) -> None:
        if mode & (PUNCH_HOLE | ZERO_RANGE):
            self.zero(off, min(off + length, self.size))
        if not mode & KEEP_SIZE and off + length > self.size:
            self.truncate(off + length)

    def seek(self, off: int, data: bool) -> int | None:
        """What SEEK_DATA (data) or SEEK_HOLE find from ``off``; None for ENXIO."""
        if off >= self.size:
            return None
        i = off // PAGE
        if data:
            later = [j for j in self.pages if j >= i and j * PAGE < self.size]
            return max(min(later) * PAGE, off) if later else None
        while i in self.pages and i * PAGE < self.size:
            i += 1
        return min(max(i * PAGE, off), self.size)

    def copy_to(self, dst: Model, off_in: int, off_out: int, length: int) -> None:
        def hole(start: int, end: int) -> None:  # a hole of the source, as one range
            dst.zero(off_out + start, off_out + end)
            if off_out + end > dst.size:
                dst.truncate(off_out + end)

        done, hole_from = 0, None
        while done < length:  # a source page at a time: holes stay holes
            n = min(length - done, PAGE - (off_in + done) % PAGE)
            if (off_in + done) // PAGE in self.pages:
                if hole_from is not None:
                    hole(hole_from, done)
                    hole_from = None
                dst.write(off_out + done, bytes(self.data[off_in + done:off_in + done + n]))
            elif hole_from is None:
                hole_from = done
            done += n
        if hole_from is not None:
            hole(hole_from, length)
