"""A long-lived process reuses a loaded pipeline only while nothing its import read changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from async_pipeline.core.reload import PipelineCache, load_recorded
from async_pipeline.errors import PipelineError

PIPELINE = """
import os
from helpers import NAME
from async_pipeline import define_pipeline, sh, task

with open("version.txt") as handle:
    version = handle.read().strip()
packages = sorted(os.listdir("packages"))
pipeline = define_pipeline(
    name=f"{NAME}-{version}",
    tasks={p: task(sh("true")) for p in packages},
)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the pipeline reads relative paths, as pipelines in a repo do
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "helpers.py").write_text("NAME = 'app'\n")
    (tmp_path / "version.txt").write_text("1\n")
    (tmp_path / "packages" / "a").mkdir(parents=True)
    return tmp_path


def test_an_unchanged_project_reuses_the_loaded_pipeline(project: Path) -> None:
    cache = PipelineCache()
    first = cache.load(None, project)
    assert first.name == "app-1" and list(first.tasks) == ["a"]
    assert cache.load(None, project) is first


def _same_stat_edit(path: Path, old: str, new: str) -> None:
    stat = path.stat()
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: _same_stat_edit(p / "pipeline.py", 'f"{NAME}', 'f"{NAME}x'), "appx-1"),
        (lambda p: _same_stat_edit(p / "helpers.py", "'app'", "'apq'"), "apq-1"),
        (lambda p: (p / "version.txt").write_text("2\n"), "app-2"),
    ],
)
def test_an_edit_to_anything_the_import_read_reloads(project: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    cache = PipelineCache()
    first = cache.load(None, project)
    change(project)
    second = cache.load(None, project)
    assert second is not first and second.name == expected


def test_a_new_entry_in_a_listed_directory_reloads(project: Path) -> None:
    cache = PipelineCache()
    cache.load(None, project)
    (project / "packages" / "b").mkdir()
    assert list(cache.load(None, project).tasks) == ["a", "b"]


def test_a_failed_load_is_not_kept(project: Path) -> None:
    cache = PipelineCache()
    (project / "version.txt").unlink()
    with pytest.raises(PipelineError):
        cache.load(None, project)
    (project / "version.txt").write_text("3\n")
    assert cache.load(None, project).name == "app-3"


def test_a_helper_imported_from_cached_bytecode_is_still_fingerprinted(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.dont_write_bytecode", False)  # Python's default
    PipelineCache().load(None, project)  # leaves __pycache__/helpers.*.pyc behind
    cache = PipelineCache()
    assert cache.load(None, project).name == "app-1"  # this load reads helpers from the .pyc
    _same_stat_edit(project / "helpers.py", "'app'", "'apq'")
    assert cache.load(None, project).name == "apq-1"


def test_what_the_import_stats_and_reads_from_the_environment_is_fingerprinted(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELOAD_TEST_FLAVOR", raising=False)
    (project / "pipeline.py").write_text(
        "import os\nfrom pathlib import Path\n"
        "from async_pipeline import define_pipeline, sh, task\n"
        "flag = 'on' if Path('flag').exists() else 'off'\n"
        "flavor = os.environ.get('RELOAD_TEST_FLAVOR', 'plain')\n"
        "pipeline = define_pipeline(name=f'{flag}-{flavor}', tasks={'a': task(sh('true'))})\n"
    )
    cache = PipelineCache()
    assert cache.load(None, project).name == "off-plain"
    (project / "flag").touch()
    assert cache.load(None, project).name == "on-plain"
    pipeline, fingerprint = load_recorded(None, project)
    assert pipeline.name == "on-plain"
    assert "RELOAD_TEST_FLAVOR" in fingerprint.env_names and not fingerprint.env_all
    assert type(os.environ).__name__ == "_Environ"  # the process's own, put back after the load
