"""The subject side of the core: the plugin contract, plugin discovery, workloads, and the
loop that observes a Subject and turns broken invariants into Incidents. Nothing here knows
any particular subject; plugins arrive through the `aiops.subjects` entry-point group."""
