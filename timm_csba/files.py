"""Output files and folders: checked before a command's work, then written atomically (a kill mid-write leaves the
previous version or nothing, never half a file)."""
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

__all__ = ['OutputPathError', 'check_output_path', 'atomic_path', 'atomic_dir', 'write_text', 'write_json', 'write_yaml',
           'replace_dir', 'file_sha256']


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names it and why."""


def check_output_path(path: os.PathLike, flag: str, folder: bool = False) -> Path:
    """Raise OutputPathError unless `path` can be written as a file (or, with `folder`, made as a folder): before a
    command's work, so a bad --out costs nothing and leaves nothing. `flag` names the option in the message."""
    path = Path(path)
    kind = 'folder' if folder else 'file'
    if path.exists() and path.is_dir() != folder:
        problem = ' is a file' if folder else ' is a folder'
    else:
        parent = path if folder and path.exists() else path.parent
        while not parent.exists() and parent != parent.parent:  # up to what mkdir(parents=True) would start from
            parent = parent.parent
        problem = (f': {parent} is a file, not a folder' if not parent.is_dir() else
                   f': this user cannot write in {parent}' if not os.access(parent, os.W_OK | os.X_OK) else None)
    if problem:
        raise OutputPathError(f'{flag} {path}{problem}; pass {flag} a {kind} path you can write')
    return path


@contextmanager
def atomic_path(path: os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it the mode a plain open() would
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + '\n')


def write_yaml(path: os.PathLike, data: Any) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def replace_dir(tmp_dir: os.PathLike, target: os.PathLike) -> None:
    """Move the finished folder `tmp_dir` onto `target`; a kill in between leaves `target` or `target.old`."""
    tmp_dir, target = Path(tmp_dir), Path(target)
    os.chmod(tmp_dir, 0o777 & ~_umask())
    old = target.with_name(target.name + '.old')
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp_dir, target)
    if old.exists():
        shutil.rmtree(old)


@contextmanager
def atomic_dir(target: os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside `target`; on success it replaces `target` (`replace_dir`), on error
    it is removed, so `target` is the previous folder or the complete new one, never a half-filled one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{target.name}.', dir=target.parent))
    try:
        yield tmp
        replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing left there after replace_dir moved it


def file_sha256(path: os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()
