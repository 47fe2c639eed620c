"""The `aiops` command line: the things kubectl is bad at."""
