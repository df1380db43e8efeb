"""Dependency environments for plugins.

``kernel``: whether the kernel's own environment already satisfies a plugin's requirements (the fast path:
it is then reused read-only inside the jail).
"""
