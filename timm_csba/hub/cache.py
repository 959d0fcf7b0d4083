"""Seed the HF cache from staged folders: `pretrained=True` offline, exactly as after a download."""
import hashlib
import os
import shutil
from pathlib import Path
from typing import List, Optional, Sequence

from ..files import file_sha256
from ..models.csba_squeeze import HF_HUB_ORG
from ..pretrained import HubError
from .staged import validate_staged

# the Hub stores these through LFS, whose cache blobs are named by the file's sha256 (text files: git blob sha1)
LFS_SUFFIXES = ('.safetensors', '.png', '.bin', '.pt', '.pth')


def _etag(path: Path) -> str:
    if path.suffix in LFS_SUFFIXES:
        return file_sha256(path)
    data = path.read_bytes()
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()  # git's blob id, the Hub's etag


def staged_folders(paths: Sequence[os.PathLike]) -> List[Path]:
    """Staged repos among `paths`: each a folder with config.json, or a folder of such folders (hub/)."""
    found = []
    for path in map(Path, paths):
        if (path / 'config.json').exists():
            found.append(path)
        else:
            found.extend(sorted(p.parent for p in path.glob('*/config.json') if not p.parent.name.startswith('.')))
    if not found:
        raise HubError(f'no staged Hub folders (with config.json) in {", ".join(map(str, paths))}.')
    return found


def seed_cache(paths: Sequence[os.PathLike], org: str = HF_HUB_ORG,
               cache_dir: Optional[os.PathLike] = None) -> List[str]:
    """Write each staged folder into the HF cache as repo `org/<folder name>` at `main`; return the repo ids.

    The layout is the one huggingface_hub writes (blobs named by etag, snapshots/<commit>/ linking to them,
    refs/main), so `hf_hub_download` and timm's `pretrained=True` find the files with HF_HUB_OFFLINE=1.
    """
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name
    cache = Path(cache_dir or constants.HF_HUB_CACHE)
    repo_ids = []
    for folder in staged_folders(paths):
        validate_staged(folder)
        repo_id = f'{org}/{folder.name}'
        storage = cache / repo_folder_name(repo_id=repo_id, repo_type='model')
        files = sorted(p for p in folder.rglob('*') if p.is_file())
        etags = {p: _etag(p) for p in files}
        # a stable stand-in for the Hub's commit id: the same files give the same snapshot
        commit = hashlib.sha1(''.join(f'{p.relative_to(folder)}:{etags[p]}\n' for p in files).encode()).hexdigest()
        snapshot = storage / 'snapshots' / commit
        for path in files:
            blob = storage / 'blobs' / etags[path]
            if not blob.exists():
                blob.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, blob.with_suffix('.incomplete'))
                os.replace(blob.with_suffix('.incomplete'), blob)
            link = snapshot / path.relative_to(folder)
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(os.path.relpath(blob, link.parent))
        (storage / 'refs').mkdir(parents=True, exist_ok=True)
        (storage / 'refs' / 'main').write_text(commit)
        repo_ids.append(repo_id)
    return repo_ids
