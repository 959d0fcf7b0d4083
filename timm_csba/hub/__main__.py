"""`python -m timm_csba.hub`: stage a run, requote its study row, publish it, seed the HF cache.

    python -m timm_csba.hub export runs/elpv_study/hub96/csba.s0 --to hub/csba_squeeze.elpv \\
        --seeds runs/elpv_study/hub96/csba.s1 runs/elpv_study/hub96/csba.s2 --study studies/elpv/results.csv
    python -m timm_csba.hub update-study hub/csba_squeeze.elpv    # the card's study row after more seeds joined
    python -m timm_csba.hub push hub/csba_squeeze.elpv --repo-id timm-csba/csba_squeeze.elpv --dry-run
    python -m timm_csba.hub seed-cache hub/        # then HF_HUB_OFFLINE=1 timm.create_model(..., pretrained=True)
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..extras import missing_extra

try:  # the [train] extra; started without it, the command says so in one line
    from ..files import OutputPathError, check_output_path
    from ..models.csba_squeeze import HF_HUB_ORG
    from ..pretrained import HubError, registry_repo_id
    from .cache import seed_cache
    from .export import WEIGHTS_DTYPES, export_run, update_study
    from .publish import push
except ModuleNotFoundError as e:
    sys.exit(missing_extra(e, 'python -m timm_csba.hub'))


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.hub', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    p = commands.add_parser('export', help='stage a finished train.py run as a Hub repo folder')
    p.add_argument('run_dir', help='the run directory (runs/<name>)')
    p.add_argument('--to', required=True, help='the staged folder, hub/<arch>.<tag>')
    p.add_argument('--seeds', nargs='*', default=[],
                   help='other-seed runs of the same recipe, or their study records (for mean and std)')
    p.add_argument('--diagnostics', help='diagnostics folder (default: RUN/diagnostics)')
    p.add_argument('--study', help='a study\'s results.csv that holds the run (studies/elpv/results.csv): the card '
                                   'quotes the architecture\'s row')
    p.add_argument('--weights-dtype', default='float32', choices=sorted(WEIGHTS_DTYPES),
                   help='store the weights in this dtype; float16 halves the file, after checking that the run\'s '
                        'test predictions do not change')
    p = commands.add_parser('update-study', help='requote staged folders\' study row from the current results.csv')
    p.add_argument('folders', nargs='+', help='staged folders exported with --study, hub/<arch>.<tag>')
    p.add_argument('--study', default='studies/elpv/results.csv', help='the study\'s results.csv')
    p = commands.add_parser('push', help='upload a staged folder to the Hub')
    p.add_argument('folder', help='the staged folder, hub/<arch>.<tag>')
    p.add_argument('--repo-id', help='ORG/NAME (default: the hf_hub_id timm\'s registry gives the folder\'s tag)')
    p.add_argument('--other-repo-id', action='store_true',
                   help='push to a --repo-id that is not the registry\'s (pretrained=True will not find it there)')
    visibility = p.add_mutually_exclusive_group()
    visibility.add_argument('--private', dest='private', action='store_true', default=None,
                            help='make the repo private, also if it exists (default: keep it; new: the namespace\'s '
                                 'default)')
    visibility.add_argument('--public', dest='private', action='store_false', help='make the repo public')
    p.add_argument('--revision', help='branch to commit to (created from main if missing)')
    p.add_argument('--create-pr', action='store_true', help='open a pull request instead of committing')
    p.add_argument('--dry-run', action='store_true', help='validate and list what would be uploaded; upload nothing')
    p = commands.add_parser('seed-cache', help='put staged folders into the local HF cache (for HF_HUB_OFFLINE=1)')
    p.add_argument('paths', nargs='+', help='staged folders, or hub/ for all of them')
    p.add_argument('--org', default=HF_HUB_ORG, help='the Hub namespace the models are published under')
    p.add_argument('--cache-dir', help='HF hub cache (default: $HF_HUB_CACHE, ~/.cache/huggingface/hub)')
    args = parser.parse_args(argv)
    try:
        if args.command == 'export':
            check_output_path(args.to, '--to', folder=True)
            folder = export_run(args.run_dir, args.to, args.seeds, args.diagnostics, args.study,
                                args.weights_dtype)
            print(f'staged {folder}')
        elif args.command == 'update-study':
            for folder in args.folders:
                seeds = json.loads((update_study(folder, args.study) / 'study.json').read_text())['seeds']
                print(f'{folder}: the card quotes seeds {", ".join(map(str, seeds))} of {args.study}')
        elif args.command == 'push':
            registered = registry_repo_id(args.folder)
            repo_id = args.repo_id or registered or f'{HF_HUB_ORG}/{Path(args.folder).name}'
            if registered and repo_id != registered and not args.other_repo_id:
                raise HubError(f'--repo-id {repo_id} is not where timm looks for {Path(args.folder).name} '
                               f'({registered}); drop --repo-id, or pass --other-repo-id to push there anyway.')
            files, commit = push(args.folder, repo_id, private=args.private, revision=args.revision,
                                 create_pr=args.create_pr, dry_run=args.dry_run)
            verb = 'would upload' if args.dry_run else 'uploaded'
            print(f'{verb} {len(files)} files to https://huggingface.co/{repo_id}:')
            print('\n'.join(f'  {size:>10,d}  {name}' for name, size in files))
            if commit is not None:
                print(f'commit {commit.oid}: {commit.pr_url or commit.commit_url}')
        else:
            if args.cache_dir:
                check_output_path(args.cache_dir, '--cache-dir', folder=True)
            for repo_id in seed_cache(args.paths, org=args.org, cache_dir=args.cache_dir):
                print(f'cached {repo_id}')
    except (HubError, OutputPathError) as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
