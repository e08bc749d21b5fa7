"""Pieces the screens share: the plan table's rows and words, cells that fit, ticks."""
