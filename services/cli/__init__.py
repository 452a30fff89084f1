"""The `o2c` console command."""
