"""Depot's benchmarks, each against a peer measured in the same run: `bash scripts/bench.sh`."""
