"""The contract every layer shares: config coercion, typed work and results, the benchmark registry and
suites, dtype names, statistics. Pure Python: no torch at import, no argparse, no rich."""
