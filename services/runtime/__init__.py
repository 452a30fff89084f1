"""A small stream-processing runtime on confluent-kafka, in the shape of Kafka Streams.

A processor declares its co-partitioned input topics, its state store and its core;
partition p of its inputs is one task with its own store. The runtime owns everything
between Kafka and the cores: the consumer group, batching, the event-time merge of a
task's inputs, state stores with their changelogs, re-routing of records a producer put
on the wrong partition, dead letters, and the order of flush, commit and checkpoint.
"""
