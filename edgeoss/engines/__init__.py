"""Engines: one small module per backend behind one contract (base.Engine).

An engine takes prompt token ids and sampling settings and yields token ids;
harmony (rendering and parsing) lives above it, so every backend gets the
same prompts and the same parsing.
"""
