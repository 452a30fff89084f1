"""Matching rules as pure functions over immutable state: no faust, Kafka or psycopg here.

The modules named in `native.COMPILED` are compiled with mypyc by `make install`
(services/domain/native.py); the same .py sources run as they are when nothing is compiled,
or when O2C_PURE_PYTHON=1 hides the compiled ones (services/settings.py).
"""

from services.domain import native as _native

_native.honour_pure_python()
