"""Fault executors plugins share, one idea a module: toxics in toxiproxy (`toxics`), a disk
filled with one file (`diskfill`), a pod cut off by a NetworkPolicy (`netpolicy`), a command
run in a pod (`podexec`), delay added to a pod's network by `tc netem` (`netem`), and the
latency ± jitter parameters the two delays share (`delay`).

Each names what it makes after the fault (`aiops-chaos-...`), so a revert finds exactly that
and nothing else, from the fault's spec and the subject alone: an operator restarted between
inject and revert has no memory of the injection to go by."""

PREFIX = "aiops-chaos-"
