"""Composition root: the `abuse-desk` command wires the stages together (the stages never import each other)."""
