"""A deterministic order-to-cash world: an event stream with its ground truth.

`simulate(config, out, truth_out)` writes CloudEvents JSON lines in delivery order and,
beside them, what a correct matcher should conclude (services/simulator/truth.py). Pure: no
Kafka, no wall clock; the same config gives the same bytes.
"""

from services.simulator.config import SimConfig
from services.simulator.run import simulate

__all__ = ["SimConfig", "simulate"]
