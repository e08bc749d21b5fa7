"""The Textual face of qrtui. Nothing outside this package imports Textual."""
