"""Workload families. Each module registers its benchmarks and imports torch only inside functions."""
