"""The performance gate as procedures and statistics: `compare` (two sides of results, bootstrap ratio
of medians and a rank test), `thresholds`, `history` (change points), `ab` (interleaved runs of two
environments). No argparse, no printing. May import core, platform, execution and results; never cli."""
