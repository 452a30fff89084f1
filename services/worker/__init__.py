"""Faust stream processors: thin shells that decode, call the pure core and produce."""
