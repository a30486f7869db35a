"""Where Actionstep's OAuth tokens live between the steps of a run and between runs.

Actionstep rotates refresh tokens: every token response carries a new refresh token, and the
one just used is spent. So the steps of a run (one process each under Dagster's multiprocess
executor) must share one access token, and the rotated refresh token must outlive the run.

- `FileTokenStore`: a JSON file (mode 0600) under `$DAGSTER_HOME`, guarded by a file lock, so
  any number of processes share it; written atomically (temporary file, then rename).
- `MemoryTokenStore`: the same within one process, for runs on an ephemeral instance (no
  `$DAGSTER_HOME`: Dagster then runs every step in this process).

Each store holds one `TokenState` per chain: a chain starts at the refresh token the operator
set (`ACTIONSTEP__REFRESH_TOKEN`), known only by its SHA-256 `seed`. While that variable is
unchanged, the chain's newest refresh token is newer than it and is used instead; a different
value means the app was authorised again, and it starts a new chain. Nothing here logs a token.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from filelock import FileLock

TOKEN_FILE = "actionstep_tokens.json"


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@dataclass
class TokenState:
    """The newest tokens of one chain. `expires_at` is wall-clock time (seconds since the epoch),
    comparable across processes; `run_key` names the run the access token was issued for."""

    seed: str
    refresh_token: str = field(repr=False)
    access_token: str = field(default="", repr=False)
    api_endpoint: str = ""
    expires_at: float = 0.0
    run_key: str = ""


class TokenStore(Protocol):
    """`lock()` makes a load-refresh-save exclusive across every user of the store."""

    def lock(self) -> AbstractContextManager[None]: ...

    def load(self, chain: str) -> TokenState | None: ...

    def save(self, chain: str, state: TokenState) -> None: ...

    def describe(self) -> str: ...


class MemoryTokenStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._states: dict[str, TokenState] = {}

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            yield

    def load(self, chain: str) -> TokenState | None:
        state = self._states.get(chain)
        return TokenState(**asdict(state)) if state else None

    def save(self, chain: str, state: TokenState) -> None:
        self._states[chain] = TokenState(**asdict(state))

    def describe(self) -> str:
        return "this process's memory"


class FileTokenStore:
    """`<path>` holds {chain: TokenState}; `<path>.lock` is the lock file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._thread_lock = threading.RLock()  # FileLock is per process: threads queue here first
        self._file_lock = FileLock(str(self.path) + ".lock")

    @contextmanager
    def lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, self._file_lock:
            yield

    def _read(self) -> dict[str, dict]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:  # a damaged file: start the chain again from the variable's token
            return {}

    def load(self, chain: str) -> TokenState | None:
        raw = self._read().get(chain)
        return TokenState(**raw) if isinstance(raw, dict) else None

    def save(self, chain: str, state: TokenState) -> None:
        states = self._read()
        states[chain] = asdict(state)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-", suffix=".json")  # mode 0600
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(states, out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def describe(self) -> str:
        return str(self.path)


_PROCESS_STORE = MemoryTokenStore()


def token_store(path: str = "", dagster_home: str = "") -> TokenStore:
    """The file `path`, else `<dagster_home>/actionstep_tokens.json`, else this process's memory."""
    if path:
        return FileTokenStore(path)
    if dagster_home:
        return FileTokenStore(Path(dagster_home) / TOKEN_FILE)
    return _PROCESS_STORE


__all__ = ["TokenState", "TokenStore", "FileTokenStore", "MemoryTokenStore", "token_store", "fingerprint"]
