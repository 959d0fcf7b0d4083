"""Publish a staged folder: make a Hub model repo exactly the folder, with every failure in one line."""
import os
from pathlib import Path
from typing import Any, List, Optional, Tuple

from .. import __version__
from ..pretrained import HubError
from .staged import validate_staged


def _network_errors() -> Tuple[type, ...]:
    """Connection-level exception types of whichever HTTP client this huggingface_hub version uses."""
    errors = [OSError]  # requests' ConnectionError is one
    for module in ('httpx2', 'httpx', 'requests'):
        try:
            client = __import__(module)
        except ImportError:
            continue
        errors.append(getattr(client, 'TransportError', None) or getattr(client, 'RequestException'))
    return tuple(errors)


def push(
        folder: os.PathLike,
        repo_id: str,
        private: Optional[bool] = None,
        revision: Optional[str] = None,
        create_pr: bool = False,
        dry_run: bool = False,
        token: Optional[str] = None,
) -> Tuple[List[Tuple[str, int]], Any]:
    """Validate `folder`, then make model repo `repo_id` exactly the folder; return (files, CommitInfo or None).

    private=None keeps an existing repo's visibility and gives a new one the namespace's default; True/False
    also changes an existing repo (create_repo ignores `private` when the repo exists). Remote files that are
    not in the folder are deleted in the same commit. `revision` is a branch (created from main if missing);
    `create_pr` opens a pull request instead of committing. Token: HF_TOKEN or `hf auth login`.
    """
    files = validate_staged(folder)
    if dry_run:
        return files, None
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, RepositoryNotFoundError
    api = HfApi(token=token, library_name='timm_csba', library_version=__version__)
    try:
        api.create_repo(repo_id, repo_type='model', private=private, exist_ok=True)
        if private is not None:
            api.update_repo_settings(repo_id, private=private, repo_type='model')
        if revision and not create_pr:
            api.create_branch(repo_id, branch=revision, repo_type='model', exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), repo_type='model', revision=revision, create_pr=create_pr,
            delete_patterns='*',  # the repo becomes exactly the staged folder (.gitattributes is kept)
            commit_message=f'Upload {Path(folder).name} from timm_csba')
    except LocalTokenNotFoundError:
        raise HubError('no Hugging Face token: run `hf auth login` or set HF_TOKEN to a token with write '
                       'access.') from None
    except RepositoryNotFoundError:
        raise HubError(f'the Hub has no repo {repo_id} you can see: check --repo-id, and that your token belongs '
                       f'to the namespace {repo_id.split("/")[0]} or is granted it.') from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 401:
            raise HubError('the Hub refused the token (401): it is invalid or expired; run `hf auth login` again '
                           'or set HF_TOKEN.') from None
        if status == 403:
            raise HubError(f'the token cannot write to {repo_id} (403): use a token with write access to the '
                           f'namespace {repo_id.split("/")[0]}.') from None
        if status == 404:
            raise HubError(f'{repo_id}: not found (404): check --repo-id and --revision.') from None
        raise HubError(f'the Hub answered {status}: {e}') from None
    except _network_errors() as e:
        raise HubError(f'cannot reach the Hub ({type(e).__name__}: {e}): check the network or HF_ENDPOINT, then '
                       f'push again; nothing was changed if no commit was printed.') from None
    return files, commit
