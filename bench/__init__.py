"""Benchmarks: figures printed as tables and written as JSON under bench/results/."""
