"""Presentation helpers pages (and the CLI) may use directly: names and dates as people read them, charts,
tables and files made safe to open, highlighted explanations. Pure functions of plain values; imports nothing
from ``core`` at run time (domain types only for type checking)."""
