"""Stack evaluations (and what else tests compute from them alone) kept on disk: each is computed once per state of
the sources, however many test processes (pytest-xdist workers) and sessions need it.

An entry is keyed by a hash of everything an evaluation can read: every file of the project outside tests/ (and
the caches, build/ and hidden directories) plus the test support that seeds the evaluations, the Python version
and the installed distributions; and by what the caller passes in (stack, seeded secrets, config override). Any
change to a source makes a new key, so an entry of older sources is never read. A lock per entry lets one process
compute it while the others wait for its result. Entries live under build/cache/plans/ (gitignored; `make clean`
removes them); only the few most recently used source states are kept.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import pickle
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / "build" / "cache" / "plans"
# Directories no evaluation reads (hidden ones too: .git, .venv, .tools and the tools' caches).
SKIPPED_DIRS = {"build", "tests", "__pycache__", "node_modules"}
# The tests' own files that decide what an evaluation is asked (seeded secrets) and how it is kept.
TEST_INPUTS = ("tests/support/plans.py", "tests/support/plan_cache.py")
KEEP_SOURCE_STATES = 4


def source_files(root: Path = ROOT) -> list[Path]:
    files = [root / path for path in TEST_INPUTS]
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS)
        files.extend(Path(directory) / name for name in sorted(filenames) if not name.endswith((".pyc", ".pyo")))
    return files


def _installed() -> list[str]:
    """The installed distributions with their versions (their dist-info directories)."""
    found: set[str] = set()
    for entry in sys.path:
        if entry.endswith("site-packages") and os.path.isdir(entry):
            found.update(name for name in os.listdir(entry) if name.endswith(".dist-info"))
    return sorted(found)


def source_key(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    digest.update(f"{sys.version}\0{sys.platform}\0".encode())
    digest.update("\0".join(_installed()).encode())
    for path in source_files(root):
        digest.update(b"\0" + path.relative_to(root).as_posix().encode() + b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError as error:  # vanished or unreadable: a key of its own
            digest.update(repr(error).encode())
    return digest.hexdigest()


# Taken when the tests start, before the evaluations import the program's modules: an entry is written only when
# the sources still hash to this after it was computed, so sources edited during a run are never stored as before.
SOURCE_KEY = source_key()


def _entry_key(name: str, parts: Any) -> str:
    encoded = json.dumps(parts, sort_keys=True, default=repr)
    return f"{name}-{hashlib.sha256(encoded.encode()).hexdigest()[:16]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): processes may each evaluate; writes stay atomic
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive(name: str) -> Iterator[None]:
    """One test process at a time in the block (the others wait), for work that fills a cache of its own."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with _locked(CACHE_DIR / f"{name}.lock"):
        yield


def _prune(current: Path) -> None:
    states = sorted(
        (p for p in CACHE_DIR.iterdir() if p.is_dir() and p != current), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for stale in states[KEEP_SOURCE_STATES - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)


_memory: dict[str, Any] = {}


def cached(name: str, compute: Callable[[], T], parts: Any = None) -> T:
    """`compute()`, once per source state and `parts` (JSON-able: what the caller varies), across processes."""
    key = _entry_key(name, parts)
    if key not in _memory:
        try:
            _memory[key] = _on_disk(key, compute)
        except OSError:  # no usable cache directory (read-only, or removed meanwhile): computed here alone
            _memory[key] = compute()
        # Kept for the whole run: out of every later garbage collection pass, as what collection built (conftest).
        gc.collect()
        gc.freeze()
    value: T = _memory[key]
    return value


def _on_disk(key: str, compute: Callable[[], T]) -> T:
    state = CACHE_DIR / SOURCE_KEY[:24]
    state.mkdir(parents=True, exist_ok=True)
    os.utime(state)  # recently used: kept by _prune
    entry = state / f"{key}.pickle"
    with _locked(state / f"{key}.lock"):
        if entry.is_file():
            with contextlib.suppress(Exception):  # an unreadable entry is computed again
                loaded: T = pickle.loads(entry.read_bytes())
                return loaded
        value = compute()
        if source_key() == SOURCE_KEY:  # the sources did not change while it was computed
            with tempfile.NamedTemporaryFile(dir=state, suffix=".tmp", delete=False) as out:
                out.write(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(out.name, entry)
            _prune(state)
        return value
