"""chipbench: one harness for DLRM-style ranking and Llama-style training benchmarks on any hardware."""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
