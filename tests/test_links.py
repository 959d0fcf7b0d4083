"""Every Markdown link and every repository path that the code's docstrings and comments cite names a file that is
in the repository (tracked by git), so a reader who follows one finds it."""
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN_LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
# a repository path in code text: a top-level folder of the repository, then path characters; a template such as
# hub/<arch>.elpv or runs/<name> stops at its placeholder and is not checked
CITED_PATH = re.compile(r'(?<![\w/.-])((?:configs|studies|benchmarks|docs|hub|tests|timm_csba)/[\w./-]*[\w])'
                        r'/?(?![\w<{*-])')
# this file, whose examples name what is not there
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()
# paths of other repositories that the code names as theirs: timm's own model tests, run from its sdist
OTHER_REPOSITORIES = {'tests/test_models.py'}


def _tracked() -> set:
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return set(files) | {str(Path(f).parent) for f in files} | {str(p) for f in files for p in Path(f).parents}


def _exists(path: Path, tracked: set) -> bool:
    """Whether `path` (absolute) is a tracked file or folder of the repository, or a file written at run time
    beside one (runs/, a study's plots): those are not cited as links."""
    try:
        relative = path.resolve().relative_to(ROOT)
    except ValueError:
        return False
    return str(relative) in tracked


@pytest.fixture(scope='module')
def tracked():
    return _tracked()


def test_every_markdown_link_names_a_file_in_the_repository(tracked):
    broken = []
    # a card template's links are relative to the staged folder it is rendered into, not to the template
    for name in sorted(f for f in tracked if f.endswith('.md') and not f.endswith('_template.md')):
        for target in MARKDOWN_LINK.findall((ROOT / name).read_text()):
            if re.match(r'[a-z]+:', target) or target.startswith('#'):  # a web address, or a heading of the page
                continue
            if not _exists((ROOT / name).parent / target.split('#')[0], tracked):
                broken.append(f'{name}: {target}')
    assert broken == []


def test_every_path_the_code_cites_is_in_the_repository(tracked):
    missing = []
    for name in sorted(f for f in tracked if f.endswith(('.py', '.yaml', '.cpp', '.sh')) and f != SELF):
        for line_number, line in enumerate((ROOT / name).read_text().splitlines(), 1):
            for path in CITED_PATH.findall(line):
                if path not in OTHER_REPOSITORIES and not _exists(ROOT / path.rstrip('.'), tracked):
                    missing.append(f'{name}:{line_number}: {path}')
    assert missing == []


def test_nothing_points_outside_the_repository(tracked):
    """The design notes and papers the project was built from stay outside it; nothing may send a reader there."""
    outside = [name for name in sorted(tracked) if (ROOT / name).is_file() and name.endswith(('.md', '.py', '.yaml'))
               and name != SELF and re.search(r'DESIGN\.md|shared/paper|\.\./shared', (ROOT / name).read_text())]
    assert outside == []


def test_the_checks_catch_a_broken_link_and_a_missing_path():
    assert MARKDOWN_LINK.findall('see [the guide](docs/nothing.md) and ![x](a.png#y)') == ['docs/nothing.md', 'a.png#y']
    assert CITED_PATH.findall('see studies/elpv/REPORT.md, hub/<arch>.elpv and timm_csba/data/') == [
        'studies/elpv/REPORT.md', 'timm_csba/data']
    assert not _exists(ROOT / 'docs' / 'nothing.md', _tracked())
