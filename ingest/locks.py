"""File locks that keep index builds and readers out of each other's way.

- One builder at a time per index folder: `build_lock(index_dir)` (exclusive, blocking). A second
  `ingest`, or a second first-use `ask`, waits and then finds the first one's result.
- Readers hold a shared lease on the version folder they opened (`ReaderLease`); a version is
  deleted only by whoever gets it exclusively, i.e. when no reader holds it any more.

Locks are `flock` locks, released by the kernel when a process dies, so a `kill -9` never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("llm_atlas.index")

BUILD_LOCK = ".build.lock"
READERS_LOCK = ".readers.lock"  # inside each version folder; not part of the index's content


@contextmanager
def build_lock(index_dir: Path, on_wait: str | None = None) -> Iterator[None]:
    """Hold the index folder's build lock; blocks while another process builds."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / BUILD_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(on_wait or "Another process is building the index at %s; waiting for it.", index_dir)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class ReaderLease:
    """A shared lock on one version folder, held as long as a reader uses it."""

    def __init__(self, version: Path):
        # Read-only open: a service may only have read access to its index.
        self.fd: int | None = os.open(version / READERS_LOCK, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def lease_current(link: Path, attempts: int = 50) -> tuple[Path, ReaderLease | None]:
    """Resolve `current` and lease that version. A version deleted between resolving and leasing
    (an ingest switched and cleaned up meanwhile) is retried with the new `current`. A version
    folder without a lock file (written by an older format) is returned without a lease."""
    for _ in range(attempts):
        version = link.resolve()
        try:
            lease = ReaderLease(version)
        except FileNotFoundError:
            if version.is_dir() and not (version / READERS_LOCK).exists() and (version / "manifest.json").exists():
                return version, None
            time.sleep(0.01)
            continue
        if (version / READERS_LOCK).exists():  # still there once leased: it cannot go away now
            return version, lease
        lease.release()
    raise FileNotFoundError(f"the index version behind {link} keeps disappearing")


def remove_unused(version: Path) -> bool:
    """Delete a version folder unless some reader holds it; True when it is gone."""
    try:
        fd = os.open(version / READERS_LOCK, os.O_RDONLY)
    except FileNotFoundError:
        fd = None  # an older format's folder, or a killed build's leftover: nobody leases those
    except OSError:
        return False
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        # Renamed first, atomically: a reader that resolved this version just now finds it gone and
        # retries `current` instead of reading a half-deleted folder.
        trash = version.with_name(f".trash-{version.name}-{os.getpid()}")
        try:
            version.rename(trash)
        except OSError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True
    finally:
        if fd is not None:
            os.close(fd)
