"""Atomic writes, JSON helpers and parameter-derived cache keys.

Every cache, checkpoint and metrics file goes through :func:`atomic_write`: the bytes land in
a temporary file in the same folder, are fsync'ed, then renamed over the target. A run killed
at any moment therefore leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import numpy as np


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success fsync it and rename it over ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~current_umask())   # mkstemp makes 0600; keep the user's umask instead
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(target: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``target`` atomically (temp file, fsync, rename)."""
    with atomic_path(target) as tmp:
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(tmp, mode) as fh:
            fh.write(data)
    return Path(target)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays, paths and NaN into plain JSON values (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "detach"):  # torch tensor
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as pretty JSON."""
    return atomic_write(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def load_json(path: str | os.PathLike) -> Any:
    with open(path) as fh:
        return json.load(fh)


def cache_key(params: dict[str, Any], length: int = 12) -> str:
    """A short, stable hash of the parameters that produced an artefact."""
    blob = json.dumps(to_jsonable(params), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]



T = TypeVar("T")


class CorruptCacheWarning(UserWarning):
    """A cache file could not be read; it was moved aside and its content is recomputed."""


def quarantine(path: str | os.PathLike, error: BaseException, action: str = "recomputing it") -> Path:
    """Move a damaged file to ``<name>.corrupt`` (``.corrupt1``, ... if taken), say so, return the new path."""
    path = Path(path)
    target = path.with_name(path.name + ".corrupt")
    i = 0
    while target.exists():
        i += 1
        target = path.with_name(f"{path.name}.corrupt{i}")
    try:
        os.replace(path, target)
    except FileNotFoundError:   # another process (a torchrun rank) moved it aside first
        return target
    msg = (f"{path} is damaged ({type(error).__name__}: {str(error)[:160]}); moved it aside to {target.name} "
           f"and {action} (delete the .corrupt file once you no longer need it)")
    warnings.warn(msg, CorruptCacheWarning, stacklevel=3)
    print("WARNING:", msg, flush=True)
    return target


def read_or_quarantine(path: str | os.PathLike, reader: Callable[[Path], T]) -> T | None:
    """``reader(path)``, or ``None`` when the file is absent or damaged (then it is moved aside first).

    Caches are derived data: a truncated or damaged file (disk error, partial copy, sync tool) must
    cost a recomputation, never a bare deserialisation error that names neither the file nor the fix.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return reader(path)
    except FileNotFoundError:      # moved aside by another process meanwhile: recompute
        return None
    except (MemoryError, InterruptedError):
        raise
    except OSError as exc:
        if isinstance(exc, IsADirectoryError) or exc.errno is None:
            quarantine(path, exc)
            return None
        raise                      # a disk or network error (EIO, ESTALE): the file may be fine, say so
    except Exception as exc:       # safetensors, JSON, CSV and decoding errors all mean: recompute
        quarantine(path, exc)
        return None
