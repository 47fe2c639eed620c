"""The one error the cluster commands raise: one line saying what is wrong and how to fix it."""


class ClusterError(Exception):
    """A failure the user can act on; `str()` is one line with the fix in it."""
