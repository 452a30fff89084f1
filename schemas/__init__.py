"""The o2c event contract as code: event models, money rules, codec and topic registry."""
