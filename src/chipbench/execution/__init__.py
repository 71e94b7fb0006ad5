"""Running cases: the worker protocol, the worker programs (one process, or one rank of a torchrun job),
the pools that start and replace them, process groups, and the `session` that runs cases and builds the
results document (used by `run`, `calibrate` and `ab`). May import core, platform, measure, workloads and
results; never gate or cli."""
