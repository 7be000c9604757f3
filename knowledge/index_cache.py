"""The matcher's index kept on disk between runs, so that a command starts without rebuilding it.

Where: ``$PTCE_CACHE_DIR`` when set (an empty value turns the cache off), else
``$XDG_CACHE_HOME/ptce-advisor``, else ``~/.cache/ptce-advisor``. A per-user cache directory
rather than next to the data: the packaged data folder is usually read-only, and the
experts' YAML folder should hold only what they edit.

When it is rebuilt: the file name and its content carry a digest of everything the index
is computed from (the topics' texts and the lexicon, not the file timestamps) and of the
code that computes it (these modules, the stemmer, the Python version). A changed knowledge
base or program looks for another file; a stale file is simply never read again (the
oldest ones are pruned).

Safety: the payload is :mod:`marshal` data (plain values only, nothing executed on load)
behind a SHA-256 of itself, checked before it is decoded; a missing, truncated, corrupt or
unreadable file is ignored and the index rebuilt, never fatal. Files are written 0600 to a
temporary name, then renamed (atomic), in a 0700 directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import marshal
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from knowledge.matcher_index import MatcherIndex
from knowledge.model import KnowledgeBase
from knowledge.text import stemmer_identity

log = logging.getLogger(__name__)

CACHE_ENV = "PTCE_CACHE_DIR"
#: Bumped when the file layout changes.
FORMAT = b"PTCE-MATCHER-INDEX-2\n"
#: How many index files (knowledge bases × program versions) are kept.
KEPT_FILES = 8
_CODE = ("analyzer.py", "matcher_index.py", "index_cache.py", "text.py", "model.py", "topic_model.py", "topic_model_training.py")


def cache_dir() -> Path | None:
    """Where index files go, or None when the cache is turned off (``PTCE_CACHE_DIR=""``)."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    try:
        root = Path(base) if base else Path.home() / ".cache"
    except RuntimeError:  # no home directory (a service account): no cache
        return None
    return root / "ptce-advisor"


def code_digest() -> bytes:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _CODE:
        digest.update((here / name).read_bytes())
    digest.update(stemmer_identity().encode())
    digest.update(f"{sys.version_info[:2]} marshal {marshal.version}".encode())
    return digest.digest()


def index_key(kb: KnowledgeBase) -> str:
    """Digest of what the index is computed from: the topics' texts, the lexicon, and the code."""
    digest = hashlib.sha256(code_digest())
    lexicon = kb.lexicon
    parts: list[object] = [
        list(lexicon.synonyms.items()),
        sorted(lexicon.stopwords),
        sorted(lexicon.domain_terms),
        sorted(lexicon.subject_terms),
    ]
    for topic in kb.topics.values():
        parts.append((topic.id, topic.title, topic.short, topic.details, topic.questions, topic.keywords, topic.vigilance))
    digest.update(repr(parts).encode())
    return digest.hexdigest()


def _path(directory: Path, key: str) -> Path:
    return directory / f"matcher-{key[:32]}.bin"


def load_index(kb: KnowledgeBase) -> MatcherIndex | None:
    """The cached index of ``kb``, or None (no cache, another knowledge or program, or an unusable file)."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        key = index_key(kb)
        data = _path(directory, key).read_bytes()
    except OSError:
        return None
    header, checksum, payload = data[: len(FORMAT)], data[len(FORMAT) : len(FORMAT) + 32], data[len(FORMAT) + 32 :]
    if header != FORMAT or hashlib.sha256(payload).digest() != checksum:
        log.info("matcher index cache %s unusable: rebuilt", _path(directory, key))
        return None
    try:
        stored_key, values = marshal.loads(payload)
        if stored_key != key:
            return None
        return MatcherIndex.from_plain(values)
    except (EOFError, ValueError, TypeError) as error:
        log.info("matcher index cache unreadable (%s): rebuilt", error)
        return None


def store_index(kb: KnowledgeBase, index: MatcherIndex) -> Path | None:
    """Write ``index`` for ``kb`` (best effort: a read-only or full disk only costs the next start)."""
    directory = cache_dir()
    if directory is None:
        return None
    temporary = None
    try:
        key = index_key(kb)
        payload = marshal.dumps((key, index.to_plain()))
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".matcher-", suffix=".tmp", dir=directory)  # mode 0600
        with os.fdopen(handle, "wb") as file:
            file.write(FORMAT + hashlib.sha256(payload).digest() + payload)
        path = _path(directory, key)
        os.replace(temporary, path)
        temporary = None
        _prune(directory)
        return path
    except (OSError, ValueError) as error:
        log.info("matcher index not cached in %s: %s", directory, error)
        return None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def load_blob(kind: str, key: str) -> object | None:
    """A value stored by :func:`store_blob` under ``kind`` and ``key`` (its digest), or None."""
    directory = cache_dir()
    if directory is None:
        return None
    path = directory / f"{kind}-{key[:32]}.bin"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header, checksum, payload = data[: len(FORMAT)], data[len(FORMAT) : len(FORMAT) + 32], data[len(FORMAT) + 32 :]
    if header != FORMAT or hashlib.sha256(payload).digest() != checksum:
        return None
    try:
        stored_key, value = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    return value if stored_key == key else None


def store_blob(kind: str, key: str, value: Any) -> None:
    """Keep ``value`` (plain data) under ``kind`` and ``key``; best effort, like :func:`store_index`."""
    directory = cache_dir()
    if directory is None:
        return
    temporary = None
    try:
        payload = marshal.dumps((key, value))
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{kind}-", suffix=".tmp", dir=directory)  # mode 0600
        with os.fdopen(handle, "wb") as file:
            file.write(FORMAT + hashlib.sha256(payload).digest() + payload)
        os.replace(temporary, directory / f"{kind}-{key[:32]}.bin")
        temporary = None
        _prune(directory, f"{kind}-*.bin")
    except (OSError, ValueError) as error:
        log.info("%s not cached in %s: %s", kind, directory, error)
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


@contextmanager
def building(kb: KnowledgeBase) -> Iterator[None]:
    """Held while an index is built: processes starting together (test workers, a bot and its
    tools) build it once, the others wait and then read the stored one. Best effort: without
    a usable cache directory, nothing is locked."""
    directory = cache_dir()
    handle = None
    try:
        if directory is not None:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle = os.open(directory / ".build.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(handle, fcntl.LOCK_EX)
    except OSError as error:
        log.info("matcher index build not locked in %s: %s", directory, error)
    try:
        yield
    finally:
        if handle is not None:
            os.close(handle)  # closing releases the lock


def _prune(directory: Path, pattern: str = "matcher-*.bin") -> None:
    files = sorted(directory.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEPT_FILES:]:
        old.unlink(missing_ok=True)
