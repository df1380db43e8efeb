"""Which environment a plugin gets, the installer's jail (pure), pip's failures and progress events.

These need no jail: the kernel fast path, the configuration, the nsjail configuration of an install, the
translation of pip's output into our errors, and the progress parser.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from synapse_nb.config import CONFIG_SCHEMA, ConfigError, EnvironmentSettings, load_config
from synapse_nb.environments import Environment, EnvironmentStore, ProgressEvent, lookup_environment
from synapse_nb.environments.installer import BUILD_TMP, INSTALLER_DIR, BuildJob, install_jail, pip_failure
from synapse_nb.environments.progress import PHASES, PipProgress, terminal_progress
from synapse_nb.environments.resolve import resolve_environment
from synapse_nb.errors import DependencyError, RegistryError, ResourceLimitExceeded, UsageError
from synapse_nb.requirements import parse_requirements
from synapse_nb.sandbox.host import detect_host

SHA = "sha256:" + "ab" * 32


# -- the kernel fast path ----------------------------------------------------------------------------------------
def test_requirements_the_kernel_meets_reuse_its_site_packages() -> None:
    env = lookup_environment(parse_requirements("packaging>=20\nPyYAML\njsonschema[format]>=4 ; python_version>'3'\n"))
    assert env is not None
    assert env.kind == "kernel"
    assert env.path is None
    assert env.site_dirs == detect_host().site_dirs
    assert [p.split("==")[0] for p in env.packages] == ["jsonschema", "packaging", "pyyaml"]


def test_a_requirement_excluded_by_its_marker_does_not_need_a_build() -> None:
    env = lookup_environment(parse_requirements("no-such-dist==1 ; sys_platform == 'win32'\n"))
    assert env is not None
    assert env.kind == "kernel"
    assert env.packages == ()


def test_an_unmet_requirement_with_nothing_cached_needs_a_build() -> None:
    assert lookup_environment(parse_requirements("packaging<1\n")) is None
    assert lookup_environment(parse_requirements("no-such-dist\n")) is None


def test_hash_pinned_requirements_never_reuse_the_kernel() -> None:
    import packaging

    assert lookup_environment(parse_requirements(f"packaging=={packaging.__version__} --hash={SHA}\n")) is None


def test_reuse_kernel_false_and_force_build_skip_the_fast_path(synapse_home: Path) -> None:
    reqs = parse_requirements("packaging\n")
    assert lookup_environment(reqs, force_build=True) is None
    (synapse_home / "config").write_text("environments:\n  reuse_kernel: false\n")
    assert lookup_environment(reqs) is None


def test_a_cached_environment_is_found_and_its_use_recorded(synapse_home: Path) -> None:
    from .test_environments_cache import DAY, fake_env

    store = EnvironmentStore()
    key = fake_env(store, "no-such-dist==1\n", used_days_ago=3)
    env = lookup_environment(parse_requirements("no-such-dist == 1\n"))
    assert env is not None
    assert env.kind == "built"
    assert env.key == key
    assert env.site_dirs == (synapse_home / "envs" / key / "site-packages",)
    record = store.get(key)
    assert record is not None
    assert record.last_used > record.created - 3 * DAY + 60  # touched now


def test_environment_to_json_has_the_documented_fields() -> None:
    env = lookup_environment(parse_requirements("packaging\n"))
    assert isinstance(env, Environment)
    data = env.to_json()
    assert set(data) >= {"kind", "key", "path", "site_dirs", "packages", "requirements", "interpreter", "platform"}
    assert data["path"] is None


def test_a_wheelhouse_that_is_not_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--wheelhouse: .* is not a folder"):
        resolve_environment(parse_requirements("no-such-dist\n"), plugin="x", wheelhouse=tmp_path / "missing")


# -- configuration -----------------------------------------------------------------------------------------------
def test_the_environments_section_is_typed_and_checked(synapse_home: Path) -> None:
    assert "environments" in CONFIG_SCHEMA["properties"]
    assert load_config().environments == EnvironmentSettings()
    (synapse_home / "config").write_text(
        "environments:\n  find_links: [/w]\n  index_url: https://pypi.example/simple\n  keep_days: 7\n"
    )
    settings = load_config().environments
    assert settings.find_links == ("/w",)
    assert settings.index_url == "https://pypi.example/simple"
    assert settings.keep_days == 7
    (synapse_home / "config").write_text("environments:\n  find_link: /w\n")
    with pytest.raises(ConfigError, match="unknown key 'find_link'"):
        load_config()


# -- the installer's jail ----------------------------------------------------------------------------------------
def test_the_install_jail_writes_only_the_staging_folders_and_has_no_network(tmp_path: Path) -> None:
    host = detect_host()
    job = BuildJob(
        job_dir=tmp_path / "stage" / "job",
        stage_site=tmp_path / "stage" / "site-packages",
        final_site=tmp_path / "envs" / "k" / "site-packages",
        stage_tmp=tmp_path / "stage" / "tmp",
        sources=(tmp_path / "wheelhouse",),
        pip_dir=Path("/pip"),
        pip_args=("install",),
    )
    config = install_jail(job, host)
    mounts = config.mounts()
    writable = sorted((m["src"], m["dst"]) for m in mounts if m.get("rw") and m.get("is_bind"))
    assert [w for w in writable if not w[0].startswith("/dev/")] == sorted(
        [(str(job.stage_site), str(job.final_site)), (str(job.stage_tmp), BUILD_TMP)]
    )
    sources = {m.get("src"): m["dst"] for m in mounts}
    assert sources["/pip"] == f"{INSTALLER_DIR}/pip"
    assert sources[str(tmp_path / "wheelhouse")] == str(tmp_path / "wheelhouse")
    assert not any(str(Path.home()) == m["dst"] for m in mounts)
    assert config.get("clone_newnet") == [True]
    assert f"TMPDIR={BUILD_TMP}" in config.get("envar")
    assert config.command[:3] == [str(host.python), "-I", "-c"]
    assert config.get("pass_fd") == []


# -- pip's failures ----------------------------------------------------------------------------------------------
REQS = parse_requirements("# header\ntinypkg==2.0\ntinydep==1.0\n")


def test_no_matching_distribution_names_the_line_and_what_exists() -> None:
    err = pip_failure(
        [
            "ERROR: Could not find a version that satisfies the requirement tinydep==1.0 (from versions: 2.0, 3.0)",
            "ERROR: No matching distribution found for tinydep==1.0",
        ],
        REQS,
        plugin="p",
        source="the wheelhouse /w",
    )
    assert isinstance(err, DependencyError)
    assert str(err) == (
        "p: requirements.txt:3: no distribution of 'tinydep' matches 'tinydep==1.0' in the wheelhouse /w "
        "(available: 2.0, 3.0)"
    )
    assert err.requirement == "tinydep"
    assert err.exit_code == 3


def test_a_missing_dependency_says_another_requirement_needs_it() -> None:
    err = pip_failure(["ERROR: No matching distribution found for other>=1"], REQS, plugin="p", source="x")
    assert isinstance(err, DependencyError)
    assert "needed by another requirement" in str(err)
    assert err.problems == []


def test_conflicts_name_the_requirements_as_written() -> None:
    err = pip_failure(
        [
            "ERROR: Cannot install -r /plugin/requirements.txt (line 1) and tinydep==1.0 because these package "
            "versions have conflicting dependencies.",
            "The conflict is caused by:",
            "    The user requested tinydep==1.0",
            "    tinypkg 2.0 depends on tinydep>=2",
        ],
        REQS,
        plugin="p",
        source="x",
    )
    assert isinstance(err, DependencyError)
    assert "tinypkg==2.0, tinydep==1.0 cannot be installed together" in str(err)
    assert [p.line for p in err.problems] == [2, 3]
    assert err.details == ["tinypkg 2.0 depends on tinydep>=2"]


def test_a_full_disk_is_a_resource_limit() -> None:
    err = pip_failure(
        ["ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device"],
        REQS,
        plugin="p",
        source="x",
    )
    assert isinstance(err, ResourceLimitExceeded)
    assert err.limit == "disk"
    assert err.exit_code == 6


def test_an_unreachable_index_is_a_registry_error_not_a_missing_package() -> None:
    err = pip_failure(
        [
            "WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError(...)': /simple/x/",
            "ERROR: Could not find a version that satisfies the requirement tinypkg==2.0 (from versions: none)",
        ],
        REQS,
        plugin="p",
        source="the package index",
    )
    assert isinstance(err, RegistryError)
    assert err.exit_code == 9


def test_a_failed_sdist_build_is_a_dependency_error_with_its_output() -> None:
    err = pip_failure(
        [
            "  Building wheel for tinypkg (pyproject.toml): finished with status 'error'",
            "      OSError: cannot reach the compiler",
            "ERROR: Failed to build installable wheels for some pyproject.toml based projects (tinypkg)",
        ],
        REQS,
        plugin="p",
        source="x",
    )
    assert isinstance(err, DependencyError)
    assert "requirements.txt:2: building tinypkg from source failed" in str(err)
    assert "      OSError: cannot reach the compiler" in err.details


def test_a_killed_installer_says_nothing_was_kept() -> None:
    err = pip_failure(["Collecting tinypkg"], REQS, plugin="p", source="x", stopped="was killed by SIGKILL")
    assert isinstance(err, DependencyError)
    assert "killed by SIGKILL; nothing was kept" in str(err)
    oom = pip_failure([], REQS, plugin="p", source="x", stopped="ran out of memory (environments.build_memory_mb=64)")
    assert isinstance(oom, ResourceLimitExceeded)


# -- progress ----------------------------------------------------------------------------------------------------
PIP_OUTPUT = """\
Looking in links: /w
Processing /w/tinypkg-2.0-py3-none-any.whl
Processing /w/tinydep-2.0-py3-none-any.whl
Processing /w/spy-1.0.tar.gz
  Preparing metadata (pyproject.toml): started
Building wheels for collected packages: spy
  Building wheel for spy (pyproject.toml): started
Installing collected packages: tinydep, tinypkg, spy
Successfully installed spy-1.0 tinydep-2.0 tinypkg-2.0
"""


def test_pip_output_becomes_events_in_phase_order_with_a_rising_fraction() -> None:
    events: list[ProgressEvent] = []
    parser = PipProgress(events.append, plugin="p", key="k")
    for line in PIP_OUTPUT.splitlines():
        parser.feed(line)
    phases = [e.phase for e in events]
    assert phases == ["downloading"] * 3 + ["building", "building", "installing", "installing"]
    assert "preparing spy-1.0.tar.gz" in events[3].message
    assert events[-2].message == "installing 3 package(s): tinydep, tinypkg, spy"
    fractions = [e.fraction or 0.0 for e in events]
    assert fractions == sorted(fractions)
    assert {e.plugin for e in events} == {"p"}
    assert events[0].to_json()["key"] == "k"
    assert set(phases) <= set(PHASES)


def test_the_terminal_display_prints_one_line_per_phase_without_a_terminal() -> None:
    out = io.StringIO()
    show = terminal_progress(out)
    for phase, message in [("resolving", "a"), ("resolving", "b"), ("installing", "c"), ("done", "d")]:
        show(ProgressEvent(phase, message, None, "p"))
    assert out.getvalue().splitlines() == ["p: resolving: a", "p: installing: c", "p: done: d"]


def test_sandbox_config_of_a_plugin_that_needs_a_build_prints_its_mounts_and_builds_nothing(
    tmp_path: Path, synapse_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from synapse_nb.cli import main
    from synapse_nb.environments import environment_key

    from .sandbox_helpers import write_plugin

    folder = write_plugin(tmp_path / "p", "return {}", sign=False)
    (folder / "requirements.txt").write_text("no-such-dist==1\n")
    assert main(["plugin", "sandbox-config", str(folder)]) == 0
    key = environment_key(parse_requirements("no-such-dist==1\n"))
    out = capsys.readouterr().out
    assert f'src: "{synapse_home}/envs/{key}/site-packages"\n  dst: "/opt/synapse/site/0"' in out
    assert not (synapse_home / "envs").exists()
