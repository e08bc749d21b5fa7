"""qrtui: query-retrieve of radiation-dose objects from a terminal."""

__version__ = "0.1.0"
