"""The sandbox: every plugin runs in a warm worker under nsjail.

Parts, each in its own module:

- ``policy``     what a worker may do: limits from the manifest's permissions and the host config;
- ``seccomp``    the kafel seccomp policy;
- ``jail``       a pure function from a policy and a mount layout to the exact nsjail configuration;
- ``cgroups``    the per-worker cgroups that enforce memory and process limits and report what happened;
- ``host``       what this host offers (nsjail binary, root, cgroup version, interpreter paths);
- ``launch``     launchers prepared off the critical path (cgroup created, pipes open) for the next cold start;
- ``protocol``   length-prefixed JSON frames on a dedicated channel (shared with the guest);
- ``guest``      the runner inside the jail (standard library only);
- ``worker``     the host side of one jailed worker: start, call with a millisecond deadline, kill, replace;
- ``diagnosis``  why a worker died (signal, cgroup OOM, rlimit, seccomp) as one clear error;
- ``pool``       one shared worker slot per plugin version and digest, replaced when its worker dies;
- ``isolation``  the isolation levels (``nsjail``, ``nsjail-nocgroup``, ``process``), probing and admission;
- ``process``    the ``process`` level: rlimits and a cleared environment, no jail (explicit opt-in only);
- ``gpu``        NVIDIA device nodes and driver libraries for ``gpu: true``;
- ``allowlist``  ``network_access.domains`` parsed and matched (exact names, ``*.suffix``, ports);
- ``relay``      the proxy's listening socket, created in the jail's network namespace and handed to the host;
- ``proxy``, ``proxyhttp``  the host-side egress proxy that enforces the allowlist and records refusals.

This ``__init__`` imports nothing so that the guest can import ``synapse_nb.sandbox.guest`` cheaply.
"""
