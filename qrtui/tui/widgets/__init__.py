"""Pieces the screens share."""
