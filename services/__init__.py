"""o2c-matcher services: the pure domain core, stream processors and the o2c command."""
