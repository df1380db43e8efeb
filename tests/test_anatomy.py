"""validate_folder: every part of a plugin folder checked, every problem located, the handler imported apart."""

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


def test_an_import_error_in_the_handler_is_located(make_plugin: MakePlugin) -> None:
    handler = "from synapse_nb.sdk import BaseHandler\nimport numpy_that_does_not_exist\n"
    with pytest.raises(
        HandlerError, match=r"handler.py:2: importing it raised ModuleNotFoundError: .*requirements.txt"
    ):
        validate_folder(make_plugin(handler=handler))


def test_the_handler_is_imported_in_another_process(make_plugin: MakePlugin, tmp_path: Path) -> None:
    canary = tmp_path / "imported-in"
    handler = (
        "import os\nfrom synapse_nb.sdk import BaseHandler\n"
        f"open({str(canary)!r}, 'w').write(str(os.getpid()))\n"
        "class A(BaseHandler):\n    def execute(self, d):\n        return d\n"
    )
    import os

    validate_folder(make_plugin(handler=handler))
    assert canary.read_text() != str(os.getpid())


def test_a_handler_that_kills_its_process_on_import_is_reported(make_plugin: MakePlugin) -> None:
    with pytest.raises(HandlerError, match="importing it killed the process"):
        validate_folder(make_plugin(handler="import os\nos._exit(3)\n"))


def test_missing_tests_folder_is_an_error(make_plugin: MakePlugin) -> None:
    folder = make_plugin()
    for f in (folder / "tests").iterdir():
        f.unlink()
    (folder / "tests").rmdir()
    with pytest.raises(InvalidError, match=r"tests/: missing; every plugin ships tests"):
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
