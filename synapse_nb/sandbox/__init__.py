"""The sandbox: every plugin runs in a warm worker under nsjail.

Parts, each in its own module:

- ``policy``    what a worker may do: limits from the manifest's permissions and the host config;
- ``seccomp``   the kafel seccomp policy;
- ``jail``      a pure function from a policy and a mount layout to the exact nsjail configuration;
- ``cgroups``   the per-worker cgroups that enforce memory and process limits and report what happened;
- ``host``      what this host offers (nsjail binary, root, cgroup version, interpreter paths);
- ``protocol``  length-prefixed JSON frames on a dedicated channel (shared with the guest);
- ``guest``     the runner inside the jail (standard library only);
- ``worker``    the host side of one jailed worker: start, call with a millisecond deadline, kill, replace.

This ``__init__`` imports nothing so that the guest can import ``synapse_nb.sandbox.guest`` cheaply.
"""
