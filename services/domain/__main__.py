"""`python -m services.domain`: whether the rule modules run compiled or as pure Python."""

from services.domain import native

print(native.summary())
