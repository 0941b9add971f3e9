"""Session-scoped tiny-model fixtures (see the package docstring)."""
