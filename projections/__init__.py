"""PostgreSQL read models fed from Kafka: open items, ageing, DSO, exposure, exceptions."""
