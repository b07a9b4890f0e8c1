"""load_pipeline finds pipeline.py, imports it, picks its pipeline, and explains failures."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from async_pipeline import Pipeline
from async_pipeline.core import normalize as normalize_module
from async_pipeline.core.loader import load_pipeline, resolve_config
from async_pipeline.errors import DefinitionError, LoadError, PipelineError

Write = Callable[..., Path]

MINIMAL = """\
from async_pipeline import define_pipeline, sh, task

pipeline = define_pipeline(name="{name}", tasks={{"build": task(sh("make"))}})
"""


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write files (dedented) under tmp_path: ``write("a/pipeline.py", source)``."""

    def write_file(relative: str, source: str) -> Path:
        file = tmp_path / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(textwrap.dedent(source), encoding="utf-8")
        return file

    return write_file


def _load_error(config: str | None, cwd: Path) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        load_pipeline(config, cwd=cwd)
    return info.value


# --- finding the file -------------------------------------------------------------------


def test_pipeline_py_in_the_working_directory_is_loaded(tmp_path: Path, write: Write) -> None:
    file = write("pipeline.py", MINIMAL.format(name="here"))
    pipeline = load_pipeline(cwd=tmp_path)
    assert pipeline.name == "here"
    assert pipeline.config_path == str(file.resolve())


@pytest.mark.parametrize(
    ("relative", "config"),
    [
        ("ci/other.py", "ci/other.py"),
        ("ci/pipeline.py", "ci"),
        ("ci/pipeline.py", "ci/"),
        ("deep/er/pipeline.py", "deep/er"),
    ],
    ids=["file relative to cwd", "directory", "directory with slash", "nested directory"],
)
def test_config_option_names_a_file_or_directory_relative_to_cwd(
    tmp_path: Path, write: Write, relative: str, config: str
) -> None:
    file = write(relative, MINIMAL.format(name="configured"))
    pipeline = load_pipeline(config, cwd=tmp_path)
    assert pipeline.name == "configured"
    assert pipeline.config_path == str(file.resolve())


def test_config_option_accepts_an_absolute_path(tmp_path: Path, write: Write) -> None:
    file = write("elsewhere/p.py", MINIMAL.format(name="absolute"))
    other = tmp_path / "cwd"
    other.mkdir()
    assert load_pipeline(str(file), cwd=other).name == "absolute"
    assert load_pipeline(file, cwd=other).name == "absolute"


@pytest.mark.parametrize(
    "config", [None, "missing.py", "nodir", "empty"], ids=["default", "file", "path", "dir"]
)
def test_missing_pipeline_file_is_config_not_found(tmp_path: Path, config: str | None) -> None:
    (tmp_path / "empty").mkdir()
    error = _load_error(config, tmp_path)
    assert isinstance(error, LoadError)
    assert error.code == "ASYNC_PIPELINE_CONFIG_NOT_FOUND"
    # A directory that exists is not said not to exist: it lacks the file.
    assert ("no pipeline.py in the directory 'empty'" in error.message) == (config == "empty")


def test_resolve_config_returns_the_resolved_file(tmp_path: Path, write: Write) -> None:
    file = write("pipeline.py", MINIMAL.format(name="x"))
    assert resolve_config(None, tmp_path) == file.resolve()
    assert resolve_config(".", tmp_path) == file.resolve()


# --- picking the pipeline ---------------------------------------------------------------


def test_module_attribute_named_pipeline_wins_over_other_pipelines(
    tmp_path: Path, write: Write
) -> None:
    write(
        "pipeline.py",
        """\
        from async_pipeline import define_pipeline

        base = define_pipeline(name="base")
        pipeline = define_pipeline(name="chosen")
        extra = define_pipeline(name="extra")
        """,
    )
    assert load_pipeline(cwd=tmp_path).name == "chosen"


@pytest.mark.parametrize(
    "source",
    [
        'from async_pipeline import define_pipeline\napp = define_pipeline(name="single")\n',
        'from async_pipeline import define_pipeline\napp = define_pipeline(name="single")\n'
        "alias = app\n",
        "from async_pipeline import define_pipeline\npipeline = None\n"
        'app = define_pipeline(name="single")\n',
    ],
    ids=["other name", "two names for one pipeline", "pipeline is None"],
)
def test_single_pipeline_instance_is_picked_whatever_its_name(
    tmp_path: Path, write: Write, source: str
) -> None:
    write("pipeline.py", source)
    assert load_pipeline(cwd=tmp_path).name == "single"


@pytest.mark.parametrize(
    "source",
    [
        "x = 1\n",
        "",
        "from async_pipeline import define_pipeline\n",
        "pipeline = {'name': 'app'}\n",
        "pipeline = 3\n",
    ],
    ids=["no pipeline", "empty file", "only imports", "pipeline is a dict", "pipeline is a number"],
)
def test_file_without_a_pipeline_is_config_no_pipeline(
    tmp_path: Path, write: Write, source: str
) -> None:
    write("pipeline.py", source)
    assert _load_error(None, tmp_path).code == "ASYNC_PIPELINE_CONFIG_NO_PIPELINE"


def test_several_pipelines_without_one_named_pipeline_are_ambiguous(
    tmp_path: Path, write: Write
) -> None:
    write(
        "pipeline.py",
        """\
        from async_pipeline import define_pipeline

        one = define_pipeline(name="one")
        two = define_pipeline(name="two")
        """,
    )
    error = _load_error(None, tmp_path)
    assert error.code == "ASYNC_PIPELINE_CONFIG_AMBIGUOUS"
    assert "one" in error.message and "two" in error.message


# --- failures point at the user's file and line -----------------------------------------


def test_syntax_error_points_at_the_users_file_and_line(tmp_path: Path, write: Write) -> None:
    write(
        "pipeline.py",
        """\
        from async_pipeline import define_pipeline

        pipeline = define_pipeline(name="x"
        x = 1
        """,
    )
    error = _load_error(None, tmp_path)
    assert isinstance(error, LoadError)
    assert error.code == "ASYNC_PIPELINE_CONFIG_SYNTAX"
    assert error.location is not None and error.location.startswith("pipeline.py:")
    assert "pipeline.py:3" in error.message or "pipeline.py:4" in error.message


def test_syntax_error_in_a_configured_file_is_shown_relative_to_cwd(
    tmp_path: Path, write: Write
) -> None:
    write("ci/pipeline.py", "def broken(:\n    pass\n")
    error = _load_error("ci", tmp_path)
    assert error.code == "ASYNC_PIPELINE_CONFIG_SYNTAX"
    assert "ci/pipeline.py:1" in error.message


def test_a_null_byte_is_a_syntax_error_without_a_made_up_line(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_bytes(b"x = 1\n\x00\n")
    error = _load_error(None, tmp_path)
    assert error.code == "ASYNC_PIPELINE_CONFIG_SYNTAX"
    assert error.location == "pipeline.py"
    assert "null" in error.message and ":0" not in error.message


def test_syntax_error_in_a_helper_module_points_at_the_helper(tmp_path: Path, write: Write) -> None:
    write("broken_helper.py", "VALUE = (\n")
    write("pipeline.py", "import broken_helper\n")
    error = _load_error(None, tmp_path)
    assert error.code == "ASYNC_PIPELINE_CONFIG_SYNTAX"
    assert "broken_helper.py:1" in error.message


def test_exception_in_the_users_file_is_config_error_at_its_line(
    tmp_path: Path, write: Write
) -> None:
    write(
        "pipeline.py",
        """\
        from async_pipeline import define_pipeline

        settings = {}
        pipeline = define_pipeline(name=settings["name"])
        """,
    )
    error = _load_error(None, tmp_path)
    assert isinstance(error, LoadError)
    assert error.code == "ASYNC_PIPELINE_CONFIG_ERROR"
    assert error.location == "pipeline.py:4"
    assert "KeyError" in error.message


def test_exception_in_a_helper_module_points_at_the_helper_line(
    tmp_path: Path, write: Write
) -> None:
    write(
        "ci_helpers.py",
        """\
        def task_names():
            raise RuntimeError("helper failed")
        """,
    )
    write(
        "pipeline.py",
        """\
        from async_pipeline import define_pipeline
        from ci_helpers import task_names

        NAMES = task_names()
        pipeline = define_pipeline(name="x")
        """,
    )
    error = _load_error(None, tmp_path)
    assert error.code == "ASYNC_PIPELINE_CONFIG_ERROR"
    assert error.location == "ci_helpers.py:2"


def test_exception_inside_async_pipeline_is_located_at_the_users_call(
    tmp_path: Path, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fields: object) -> Pipeline:
        raise RuntimeError("an internal bug")

    monkeypatch.setattr(normalize_module, "normalize", broken)
    write(
        "pipeline.py",
        """\
        from async_pipeline import define_pipeline

        pipeline = define_pipeline(name="x")
        """,
    )
    error = _load_error(None, tmp_path)
    assert error.code == "ASYNC_PIPELINE_CONFIG_ERROR"
    assert error.location == "pipeline.py:3"
    assert "async_pipeline" not in (error.location or "")


@pytest.mark.parametrize(
    "statement",
    [
        "raise SystemExit(2)",
        "import sys; sys.exit('bye')",
        "raise ValueError",
        "raise type('Stop', (BaseException,), {})('own base exception')",
        "raise GeneratorExit",
    ],
)
def test_exit_or_bare_exception_while_importing_is_config_error(
    tmp_path: Path, write: Write, statement: str
) -> None:
    write("pipeline.py", f"x = 1\n{statement}\n")
    error = _load_error(None, tmp_path)
    assert (error.code, error.location) == ("ASYNC_PIPELINE_CONFIG_ERROR", "pipeline.py:2")


def test_definition_error_while_importing_keeps_its_code_and_gets_the_users_line(
    tmp_path: Path, write: Write
) -> None:
    write(
        "pipeline.py",
        """\
        from async_pipeline import define_pipeline, task

        TASKS = {"build": task(timout="5m")}

        pipeline = define_pipeline(name="x", tasks=TASKS)
        """,
    )
    error = _load_error(None, tmp_path)
    assert isinstance(error, DefinitionError)
    assert (error.code, error.path) == ("ASYNC_PIPELINE_UNKNOWN_FIELD", "tasks.build.timout")
    assert error.location == "pipeline.py:5"


def test_definition_error_in_a_multi_line_call_points_at_the_call(
    tmp_path: Path, write: Write
) -> None:
    write(
        "pipeline.py",
        """\
        from async_pipeline import define_pipeline, task

        pipeline = define_pipeline(
            name="x",
            tasks={
                "build": task(timout="5m"),
            },
        )
        """,
    )
    assert _load_error(None, tmp_path).location == "pipeline.py:3"


def test_definition_error_from_a_helper_call_points_at_that_call(
    tmp_path: Path, write: Write
) -> None:
    write(
        "pipeline.py",
        """\
        from async_pipeline import define_pipeline, sh, trigger

        push = trigger.github(evnts=["push"])
        pipeline = define_pipeline(name="x")
        """,
    )
    error = _load_error(None, tmp_path)
    assert (error.code, error.location) == ("ASYNC_PIPELINE_UNKNOWN_FIELD", "pipeline.py:3")


def test_definition_error_location_is_relative_to_cwd(tmp_path: Path, write: Write) -> None:
    write("ci/pipeline.py", "from async_pipeline import define_pipeline\ndefine_pipeline()\n")
    error = _load_error("ci/pipeline.py", tmp_path)
    assert (error.code, error.location) == ("ASYNC_PIPELINE_INVALID_VALUE", "ci/pipeline.py:2")


# --- loading leaves no trace ------------------------------------------------------------


def test_loading_restores_sys_path(tmp_path: Path, write: Write) -> None:
    write("pipeline.py", MINIMAL.format(name="x"))
    before = list(sys.path)
    load_pipeline(cwd=tmp_path)
    assert sys.path == before
    write("broken/pipeline.py", "raise RuntimeError\n")
    _load_error("broken", tmp_path)
    assert sys.path == before


def test_each_pipeline_imports_its_own_helper_modules(tmp_path: Path, write: Write) -> None:
    source = """\
        from async_pipeline import define_pipeline
        from shared_names import NAME

        pipeline = define_pipeline(name=NAME)
        """
    for name in ("one", "two"):
        write(f"{name}/shared_names.py", f"NAME = {name!r}\n")
        write(f"{name}/pipeline.py", source)
    assert load_pipeline("one", cwd=tmp_path).name == "one"
    assert load_pipeline("two", cwd=tmp_path).name == "two"


@pytest.mark.parametrize(
    ("helper", "module"),
    [("names.py", "names"), ("conf/names.py", "conf.names"), ("plain/names.py", "plain.names")],
    ids=["module", "package", "namespace package"],
)
def test_reloading_sees_edits_to_helper_modules(
    tmp_path: Path, write: Write, helper: str, module: str
) -> None:
    if module == "conf.names":
        write("conf/__init__.py", "")
    write(helper, "NAME = 'before'\n")
    write(
        "pipeline.py",
        f"from async_pipeline import define_pipeline\nfrom {module} import NAME\n"
        "pipeline = define_pipeline(name=NAME)\n",
    )
    assert load_pipeline(cwd=tmp_path).name == "before"
    write(helper, "NAME = 'after the edit'\n")  # another size: no stale bytecode either
    assert load_pipeline(cwd=tmp_path).name == "after the edit"
    assert module not in sys.modules
    assert module.partition(".")[0] not in sys.modules


def test_modules_from_environments_inside_the_project_stay_imported(
    tmp_path: Path, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A repository-local virtualenv lives under the pipeline's directory; what it provides
    # is not the pipeline's own helper and must not be imported twice.
    site = tmp_path / ".venv" / "lib" / "site-packages"
    write(".venv/lib/site-packages/vendored_dep.py", "NAME = 'dep'\n")
    monkeypatch.syspath_prepend(str(site))
    write(
        "pipeline.py",
        "from async_pipeline import define_pipeline\nfrom vendored_dep import NAME\n"
        "pipeline = define_pipeline(name=NAME)\n",
    )
    try:
        assert load_pipeline(cwd=tmp_path).name == "dep"
        assert "vendored_dep" in sys.modules
    finally:
        sys.modules.pop("vendored_dep", None)


def test_helper_modules_stay_usable_by_the_loaded_pipeline(tmp_path: Path, write: Write) -> None:
    write("steps_lib.py", "def describe():\n    return 'from helper'\n")
    write(
        "pipeline.py",
        "from async_pipeline import define_pipeline, task\nimport steps_lib\n"
        "pipeline = define_pipeline(\n"
        "    name='x', tasks={'a': task(description=steps_lib.describe())}\n"
        ")\n",
    )
    assert load_pipeline(cwd=tmp_path).tasks["a"].description == "from helper"


def test_loading_without_bytecode_writing_leaves_no_pycache(
    tmp_path: Path, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ADR 0001: bytecode follows Python's own settings; PYTHONDONTWRITEBYTECODE turns it off.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    write("helper_mod.py", "VALUE = 'v'\n")
    write("pkg/__init__.py", "")
    write("pkg/sub.py", "X = 1\n")
    write(
        "pipeline.py",
        "import helper_mod, pkg.sub\nfrom async_pipeline import define_pipeline\n"
        "pipeline = define_pipeline(name=helper_mod.VALUE)\n",
    )
    load_pipeline(cwd=tmp_path)
    assert list(tmp_path.rglob("__pycache__")) == []


def test_bytecode_goes_to_the_pycache_prefix_not_the_users_directory(
    tmp_path: Path, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = tmp_path / "bytecode"
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    project = tmp_path / "project"
    write("project/helper_mod.py", "VALUE = 'v'\n")
    write(
        "project/pipeline.py",
        "import helper_mod\nfrom async_pipeline import define_pipeline\n"
        "pipeline = define_pipeline(name=helper_mod.VALUE)\n",
    )
    load_pipeline(cwd=project)
    assert list(project.rglob("__pycache__")) == []
    assert list(project.rglob("*.pyc")) == []


def test_an_edit_in_the_same_second_with_the_same_size_is_seen(tmp_path: Path) -> None:
    """A long-lived process reloads pipeline.py after every edit; bytecode must not go stale."""
    import os
    import sys

    if sys.dont_write_bytecode:
        sys.dont_write_bytecode = False
        restore = True
    else:
        restore = False
    try:
        from async_pipeline.core.loader import load_pipeline

        path = tmp_path / "pipeline.py"
        source = (
            "from async_pipeline import define_pipeline\npipeline = define_pipeline(name='aaa')\n"
        )
        path.write_text(source)
        stat = path.stat()
        assert load_pipeline(cwd=tmp_path).name == "aaa"
        path.write_text(source.replace("aaa", "bbb"))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime, same size
        assert load_pipeline(cwd=tmp_path).name == "bbb"
    finally:
        if restore:
            sys.dont_write_bytecode = True
