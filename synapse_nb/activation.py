"""Activation as a visible, once-through pipeline: from a plugin folder to a slot with a warm worker.

::

    snapshot -> plan -> early spawn -> verify -> validate -> publisher -> environment -> worker spec -> slot

1. **snapshot**: a read-only, content-addressed copy of the folder (hashed while copied): what is verified is
   what runs; no window between check and use.
2. **plan**: the snapshot's manifest and requirements, parsed once for the whole pipeline; the sandbox policy;
   the dependency environment if it is available now (the kernel's, or a cached build).
3. **early spawn**: when the environment is known, the jail starts now and comes up while the rest runs. No
   plugin code runs in it until the start frame, sent after verification.
4. **verify**: the signature of the snapshot (or the explicit, noisy ``--insecure-allow-unsigned`` waiver).
5. **validate**: the static checks of the whole folder (manifest, schemas, requirements, handler by AST,
   tests/), with the manifest and requirements of step 2. Nothing of the plugin is imported on the host.
6. **publisher**: who signed it (the trust root's fingerprint): state and sessions belong to (name,
   publisher); a version lower than the highest this publisher ran is refused (``downgrade``).
7. **environment**: found, or built (building runs dependency code, so only now, and jailed).
8. **worker spec**: policy, mounts, entrypoint and the secrets the host allows.
9. **slot**: the shared warm-worker slot for this exact file set (the early one when the spec matches).

:func:`activate` runs the stages and reports each one to ``on_stage``; the manager maps them onto its lifecycle
stages. Every stage runs once: nothing is parsed, verified or built twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .anatomy import PluginFolder, display_path, validate_folder
from .config import Config, SandboxSettings, load_config
from .environments import Environment, ProgressCallback, lookup_environment, plan_environment, resolve_environment
from .errors import SandboxError, SignatureError
from .manifest import MANIFEST_FILE, Manifest, load_manifest
from .requirements import Requirements, load_requirements
from .sandbox.host import HostInfo, detect_host
from .sandbox.jail import JailConfig, JailLayout, build_jail
from .sandbox.policy import SandboxPolicy
from .sandbox.pool import WorkerSlot, acquire_slot, release_slot, slot_key
from .sandbox.worker import WorkerSpec
from .semver import SemVer
from .signing import SignatureCheck, check_activation, take_snapshot

if TYPE_CHECKING:
    from .fileset import Snapshot
    from .state.base import StateStore

__all__ = [
    "Activation",
    "ActivationOptions",
    "activate",
    "allowed_secrets",
    "in_place",
    "inspect",
    "jail_config",
    "prepare",
    "publisher_of",
]

STAGES = ("snapshot", "plan", "spawn", "verify", "validate", "publisher", "environment", "spec", "slot")
UNSIGNED = "unsigned"


@dataclass
class ActivationOptions:
    """How to activate: trust waivers, the configuration and host, and where progress goes."""

    config: Config | None = None
    host: HostInfo | None = None
    insecure_allow_unsigned: bool = False
    allow_process_isolation: bool = False
    allow_downgrade: bool = False
    warn: Callable[[str], None] | None = None
    wheelhouse: str | Path | None = None
    progress: ProgressCallback | None = None
    store: StateStore | None = None  # for the publisher's version ledger (downgrades)
    on_stage: Callable[[str, Activation], None] | None = None  # after each stage, with what is known so far
    on_checkpoint_error: Callable[[Exception], None] | None = None  # a state checkpoint could not be saved
    mode: str = "serve"  # serve | test
    prewarm: bool = True  # use (and refill) pre-warmed jails; one-shot commands turn it off
    state: dict[str, Any] | None = None  # explicit initial state (else the store's, for this publisher)

    def prewarm_for(self, settings: SandboxSettings) -> tuple[int, int]:
        """(jails to keep ready, their memory cap in MiB) for slots of this activation."""
        return (settings.prewarm if self.prewarm else 0, settings.prewarm_memory_mb)

    def resolved(self) -> tuple[Config, HostInfo, SandboxSettings]:
        config = self.config or load_config()
        settings = config.sandbox
        if self.allow_process_isolation:  # the explicit opt-in to rlimits-only workers (= sandbox.require: any)
            settings = replace(settings, require="any")
        host = self.host or detect_host(settings.nsjail)
        return config, host, settings


@dataclass
class Activation:
    """Everything the pipeline established about one plugin: computed once, used by the handle."""

    source: Path
    shown: str
    snapshot: Snapshot
    manifest: Manifest
    requirements: Requirements
    policy: SandboxPolicy
    config: Config
    host: HostInfo
    signature: SignatureCheck | None = None
    folder: PluginFolder | None = None
    publisher: str = UNSIGNED
    environment: Environment | None = None
    spec: WorkerSpec | None = None
    timings: dict[str, float] = field(default_factory=dict)
    secrets_refused: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def state_key(self) -> str:
        """Where this plugin's state and session live: its name and its publisher."""
        return f"{self.manifest.name}@{self.publisher}"

    @property
    def digest(self) -> str:
        return self.snapshot.digest


def publisher_of(signature: SignatureCheck | None) -> str:
    """The identity state, sessions and downgrades are keyed by: the signer's trust root (its SHA-256
    fingerprint), so a renewed developer certificate under the same CA keeps its state; ``unsigned``
    otherwise."""
    if signature is None or signature.verification is None:
        return UNSIGNED
    return f"root-{signature.verification.root_fingerprint[:32]}"


def allowed_secrets(manifest: Manifest, config: Config) -> tuple[dict[str, str], tuple[str, ...]]:
    """(the secrets passed to the plugin, the names it asked for that the host does not allow).

    Only names listed in ``secrets.allow`` of ``$SYNAPSE_HOME/config`` are ever passed, never ``SYNAPSE_*``;
    a listed name that is not set in the environment is simply absent from ``context.secrets``.
    """
    allowed = config.secrets_allowed
    passed = {
        name: os.environ[name]
        for name in manifest.secrets
        if name in allowed and not name.startswith("SYNAPSE_") and name in os.environ
    }
    refused = tuple(name for name in manifest.secrets if name not in allowed or name.startswith("SYNAPSE_"))
    return passed, refused


class _Clock:
    """Times each stage into ``plan.timings`` and reports it to ``on_stage``."""

    def __init__(self, on_stage: Callable[[str, Activation], None] | None) -> None:
        self.on_stage = on_stage
        self.timings: dict[str, float] = {}
        self.plan: Activation | None = None
        self.t = time.perf_counter()

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round((now - self.t) * 1000, 3)
        self.t = now
        if self.on_stage is not None and self.plan is not None:
            self.on_stage(stage, self.plan)


def _plan(source: Path, options: ActivationOptions, clock: _Clock) -> Activation:
    """Stages 1 and 2: the snapshot, and what it says (parsed once)."""
    config, host, settings = options.resolved()
    shown = display_path(source)
    snapshot = take_snapshot(source, allow_unsigned=options.insecure_allow_unsigned)
    manifest = load_manifest(snapshot.path, display=display_path(shown, MANIFEST_FILE))
    requirements = load_requirements(snapshot.path, display=display_path(shown, "requirements.txt"))
    plan = Activation(
        source=source, shown=shown, snapshot=snapshot, manifest=manifest, requirements=requirements,
        policy=SandboxPolicy.from_manifest(manifest, settings), config=config, host=host, timings=clock.timings,
    )  # fmt: skip
    clock.plan = plan
    clock.done("snapshot")
    if manifest.runtime.satisfied_by(host.python_version):
        plan.environment = lookup_environment(requirements, config=config, host=host)
    clock.done("plan")
    return plan


def _check_runtime(plan: Activation) -> None:
    if not plan.manifest.runtime.satisfied_by(plan.host.python_version):
        have = "python{}.{}".format(*plan.host.python_version)
        raise SandboxError(
            f"needs runtime {plan.manifest.runtime}, but this kernel runs {have}; "
            "run it from a kernel with a newer interpreter",
            plugin=plan.name,
        )


def _check_version(plan: Activation, options: ActivationOptions) -> None:
    """Refuse a version lower than the highest one this publisher's plugin of this name ran here."""
    store = options.store
    if store is None or plan.publisher == UNSIGNED or options.allow_downgrade:
        return
    highest = store.highest_version(plan.state_key)
    if highest is None:
        return
    try:
        top = SemVer.parse(highest)
    except ValueError:
        return
    if plan.manifest.version < top:
        raise downgrade_error(plan.name, plan.manifest.version, top, "the highest version of {name!r} from this "
                              "publisher run here")  # fmt: skip


def downgrade_error(name: str, version: object, top: object, what: str) -> SignatureError:
    """Exit 4 (``downgrade``): ``version`` is lower than ``top`` (``what`` says which: ``{name}`` is filled in)."""
    return SignatureError(
        f"downgrade: version {version} is lower than {top}, {what.format(name=name)}; pass --allow-downgrade "
        "(allow_downgrade=True) to run it",
        plugin=name,
        reason="downgrade",
    )


def _pytest_site() -> Path:
    """The site-packages that holds pytest (a test session's jail mounts it read-only)."""
    import pytest

    return Path(pytest.__file__).resolve().parent.parent


def worker_spec(plan: Activation, *, mode: str = "serve") -> WorkerSpec:
    """Stage 8: the worker spec (the environment must be known)."""
    env = plan.environment
    if env is None:
        raise SandboxError("no dependency environment was resolved before the worker spec", plugin=plan.name)
    secrets, refused = allowed_secrets(plan.manifest, plan.config)
    plan.secrets_refused = refused
    extra_dirs = env.extra_dirs
    if mode == "test":
        # pytest (and what the fixture's host-side checks import) from the host's environment, read-only and
        # after the plugin's own packages on sys.path.
        site = _pytest_site()
        if site not in env.site_dirs and site not in extra_dirs:
            extra_dirs = (*extra_dirs, site)
    return WorkerSpec(
        plugin=plan.name,
        version=str(plan.manifest.version),
        digest=plan.snapshot.digest,
        layout=JailLayout(plugin_dir=plan.snapshot.path, site_dirs=env.site_dirs, extra_dirs=extra_dirs),
        policy=plan.policy,
        entrypoint=plan.manifest.execution.entrypoint,
        secrets=secrets,
        mode=mode,
    )


def verify_and_validate(plan: Activation, options: ActivationOptions, clock: _Clock) -> None:
    """Stages 4 to 6: signature, static validation, publisher and downgrade check."""
    plan.signature = check_activation(
        plan.snapshot,
        manifest=plan.manifest,
        allow_unsigned=options.insecure_allow_unsigned,
        display=plan.source,
        warn=options.warn,
    )
    clock.done("verify")
    plan.folder = validate_folder(
        plan.snapshot.path, display=plan.shown, manifest=plan.manifest, requirements=plan.requirements
    )
    _check_runtime(plan)
    clock.done("validate")
    plan.publisher = publisher_of(plan.signature)
    _check_version(plan, options)
    clock.done("publisher")


def initial_state(plan: Activation, options: ActivationOptions) -> dict[str, Any] | None:
    """Explicit ``state=``, else this publisher's saved state of this plugin."""
    if options.state is not None or options.store is None:
        return options.state
    return options.store.load_state(plan.state_key)


def activate(source: str | Path, options: ActivationOptions | None = None) -> tuple[Activation, WorkerSlot]:
    """Run the pipeline for the folder at ``source``; the activation and its slot (worker not started yet:
    ``slot.worker()`` is the cold start). A failure releases everything it had acquired."""
    options = options or ActivationOptions()
    clock = _Clock(options.on_stage)
    plan = _plan(Path(source), options, clock)
    slot: WorkerSlot | None = None
    if plan.environment is not None:
        # Start the jail now and verify while it comes up; plugin code runs only after verification.
        early = worker_spec(plan, mode=options.mode)
        slot = acquire_slot(early, plan.host, None, prewarm=options.prewarm_for(plan.config.sandbox))
        try:
            slot.prepare()
        except BaseException:
            release_slot(slot)
            raise
    clock.done("spawn")
    try:
        verify_and_validate(plan, options, clock)
        if plan.environment is None:
            plan.environment = resolve_environment(
                plan.requirements, plugin=plan.name, wheelhouse=options.wheelhouse, progress=options.progress,
                config=plan.config, host=plan.host,
            )  # fmt: skip
        clock.done("environment")
        plan.spec = worker_spec(plan, mode=options.mode)
        if plan.secrets_refused and options.warn is not None:
            options.warn(
                f"{plan.name}: asks for secrets not in secrets.allow of $SYNAPSE_HOME/config, not passed: "
                + ", ".join(plan.secrets_refused)
            )
        clock.done("spec")
    except BaseException:
        if slot is not None:
            release_slot(slot)
        raise
    if slot is None or slot_key(plan.spec) != slot.key:
        if slot is not None:
            release_slot(slot)
        slot = acquire_slot(plan.spec, plan.host, None, prewarm=options.prewarm_for(plan.config.sandbox))
    slot.seed_state(initial_state(plan, options))
    clock.done("slot")
    return plan, slot


def prepare(source: str | Path, options: ActivationOptions | None = None) -> Activation:
    """Stages 1, 2 and 4 to 6 only: snapshot, plan, verify, validate, publisher (what the in-process debug
    runner needs; it builds no environment and starts no jail)."""
    options = options or ActivationOptions()
    clock = _Clock(options.on_stage)
    plan = _plan(Path(source), options, clock)
    verify_and_validate(plan, options, clock)
    return plan


def in_place(folder: str | Path, options: ActivationOptions | None = None) -> Activation:
    """A folder that *is* an already verified snapshot (the read-only ``/plugin`` of a jailed test session):
    planned and validated where it is, with no copy and no second signature check."""
    from .fileset import Snapshot, scan_folder

    options = options or ActivationOptions()
    config, host, settings = options.resolved()
    path = Path(folder)
    manifest = load_manifest(path)
    requirements = load_requirements(path)
    plan = Activation(
        source=path, shown=str(path), snapshot=Snapshot(path, scan_folder(path)), manifest=manifest,
        requirements=requirements, policy=SandboxPolicy.from_manifest(manifest, settings), config=config, host=host,
    )  # fmt: skip
    plan.folder = validate_folder(path, manifest=manifest, requirements=requirements)
    return plan


def inspect(source: str | Path, options: ActivationOptions | None = None) -> Activation:
    """The pipeline without running anything (``plugin sandbox-config``, ``doctor --explain``): snapshot, plan,
    verify (waivable), validate, and the environment it *would* get (nothing is built, nothing spawned)."""
    options = options or ActivationOptions()
    plan = prepare(source, options)
    if plan.environment is None:
        plan.environment = plan_environment(plan.requirements, config=plan.config, host=plan.host)
    plan.spec = worker_spec(plan, mode=options.mode)
    return plan


def jail_config(plan: Activation) -> JailConfig:
    """The exact nsjail configuration of ``plan``'s workers (file descriptors are placeholders)."""
    if plan.spec is None:
        raise SandboxError("no worker spec: inspect() or activate() the plugin first", plugin=plan.name)
    return build_jail(plan.policy, plan.spec.layout, plan.host, name=plan.name, extra_mounts=plan.spec.extra_mounts)
