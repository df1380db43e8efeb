"""validate_folder: every part of a plugin folder checked statically, every problem located, nothing executed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from synapse_nb.anatomy import validate_folder
from synapse_nb.errors import HandlerError, InvalidError, ManifestError

MakePlugin = Callable[..., Path]


def test_the_spec_example_validates(example_plugin: Path) -> None:
    folder = validate_folder(example_plugin)
    assert folder.manifest.name == "sentiment-analyzer"
    assert folder.handler_class == "SentimentAnalyzer"
    assert sorted(folder.schemas.schemas) == ["input_schema.json", "output_schema.json"]


def test_a_handler_syntax_error_is_reported_with_its_line(make_plugin: MakePlugin) -> None:
    folder = make_plugin(handler="from synapse_nb.sdk import BaseHandler\n\nclass A(BaseHandler:\n    pass\n")
    with pytest.raises(HandlerError, match=r"handler.py:3:\d+: SyntaxError: "):
        validate_folder(folder)


def test_two_handler_classes_are_refused_with_both_names(make_plugin: MakePlugin) -> None:
    handler = (
        "from synapse_nb.sdk import BaseHandler\n\n"
        "class A(BaseHandler):\n    def execute(self, d):\n        return d\n\n"
        "class B(BaseHandler):\n    def execute(self, d):\n        return d\n"
    )
    with pytest.raises(HandlerError, match=r"handler.py:7: defines 2 handler classes: A \(line 3\), B \(line 7\)"):
        validate_folder(make_plugin(handler=handler))


def test_the_entrypoint_picks_one_of_two_classes(make_plugin: MakePlugin) -> None:
    folder = make_plugin(
        handler=(
            "from synapse_nb.sdk import BaseHandler\n\n"
            "class A(BaseHandler):\n    def execute(self, d):\n        return d\n\n"
            "class B(A):\n    pass\n"
        )
    )
    manifest = folder / "manifest.yaml"
    manifest.write_text(
        manifest.read_text().replace("    timeout: 2s\n", "    timeout: 2s\n    entrypoint: handler.py:B\n")
    )
    assert validate_folder(folder).handler_class == "B"


def test_a_file_without_a_handler_class_says_what_to_add(make_plugin: MakePlugin) -> None:
    with pytest.raises(HandlerError, match="defines no handler: add a class deriving from BaseHandler"):
        validate_folder(make_plugin(handler="x = 1\n"))


def test_a_handler_without_execute_is_refused(make_plugin: MakePlugin) -> None:
    handler = "from synapse_nb.sdk import BaseHandler\n\nclass A(BaseHandler):\n    pass\n"
    with pytest.raises(HandlerError, match=r"handler.py:3: A does not implement execute"):
        validate_folder(make_plugin(handler=handler))


def test_an_import_error_is_left_to_activation_which_runs_in_the_jail(make_plugin: MakePlugin) -> None:
    handler = (
        "from synapse_nb.sdk import BaseHandler\nimport numpy_that_does_not_exist\n\n"
        "class A(BaseHandler):\n    def execute(self, d):\n        return d\n"
    )
    assert validate_folder(make_plugin(handler=handler)).handler_class == "A"


def test_validation_never_executes_the_handler_on_the_host(make_plugin: MakePlugin, tmp_path: Path) -> None:
    canary = tmp_path / "executed"
    handler = (
        "import os\nfrom synapse_nb.sdk import BaseHandler\n"
        f"open({str(canary)!r}, 'w').write(str(os.getpid()))\n"
        "os._exit(3)\n"
        "class A(BaseHandler):\n    def execute(self, d):\n        return d\n"
    )
    assert validate_folder(make_plugin(handler=handler)).handler_class == "A"
    assert not canary.exists()


def test_a_20000_term_expression_is_a_located_problem_not_a_crash(make_plugin: MakePlugin) -> None:
    handler = (
        "from synapse_nb.sdk import BaseHandler\n"
        f"X = {' + '.join(['1'] * 20_000)}\n"
        "class A(BaseHandler):\n    def execute(self, d):\n        return d\n"
    )
    with pytest.raises(HandlerError, match=r"handler.py: an expression or block is nested too deeply"):
        validate_folder(make_plugin(handler=handler))


@pytest.mark.parametrize(
    "bomb",
    [
        "x = " + "(" * 5000 + ")" * 5000,
        "x = " + "[" * 200_000,
        "x = " + "-" * 100_000 + "1",
        "def f():\n" + "".join("    " * i + "if x:\n" for i in range(1, 120)) + "    " * 120 + "pass\n",
        "x = 1\x00",
    ],
    ids=["parentheses", "brackets", "unary", "indentation", "nul-byte"],
)
def test_compile_bombs_are_located_problems(make_plugin: MakePlugin, bomb: str) -> None:
    handler = "from synapse_nb.sdk import BaseHandler\n" + bomb + "\n"
    with pytest.raises(HandlerError, match=r"handler.py"):
        validate_folder(make_plugin(handler=handler))


def test_an_oversized_handler_is_refused_before_it_is_parsed(make_plugin: MakePlugin) -> None:
    handler = "from synapse_nb.sdk import BaseHandler\n" + "#" * (5 << 20) + "\n"
    with pytest.raises(HandlerError, match=r"handler.py: is \d+ bytes, over the 4 MiB limit"):
        validate_folder(make_plugin(handler=handler))


def test_a_handler_deriving_from_a_local_base_is_found(make_plugin: MakePlugin) -> None:
    handler = (
        "from synapse.sdk import BaseHandler\n\n"
        "class Base(BaseHandler):\n    async def execute(self, d):\n        return d\n\n"
        "class Impl(Base):\n    pass\n"
    )
    with pytest.raises(HandlerError, match=r"defines 2 handler classes: Base \(line 3\), Impl \(line 7\)"):
        validate_folder(make_plugin(handler=handler))


def test_a_tests_folder_without_a_pytest_file_is_an_error(make_plugin: MakePlugin) -> None:
    folder = make_plugin()
    for f in (folder / "tests").iterdir():
        f.unlink()
    (folder / "tests" / "notes.txt").write_text("to do\n")
    with pytest.raises(InvalidError, match=r"tests/: missing or holds no pytest file \(test_\*.py or \*_test.py\)"):
        validate_folder(folder)


def test_missing_tests_folder_is_an_error(make_plugin: MakePlugin) -> None:
    folder = make_plugin()
    for f in (folder / "tests").iterdir():
        f.unlink()
    (folder / "tests").rmdir()
    with pytest.raises(InvalidError, match=r"tests/: missing or holds no pytest file"):
        validate_folder(folder)


def test_problems_in_several_files_are_reported_together(make_plugin: MakePlugin) -> None:
    folder = make_plugin()
    (folder / "manifest.yaml").write_text((folder / "manifest.yaml").read_text().replace("0.1.0", "0.1"))
    (folder / "schemas" / "output_schema.json").write_text("{")
    (folder / "requirements.txt").write_text("ok-package\nbad line here\n")
    (folder / "handler.py").write_text("def (:\n")
    with pytest.raises(ManifestError) as info:
        validate_folder(folder)
    files = [p.file.rsplit("/", 1)[-1] for p in info.value.problems]
    assert files == ["manifest.yaml", "output_schema.json", "requirements.txt", "handler.py"]
    assert info.value.problems[2].line == 2


def test_a_runtime_newer_than_this_interpreter_is_a_warning(make_plugin: MakePlugin) -> None:
    folder = make_plugin()
    (folder / "manifest.yaml").write_text((folder / "manifest.yaml").read_text().replace("python3.10", "python3.99"))
    assert "runtime python3.99 is newer than this interpreter" in validate_folder(folder).warnings[0]
