"""The engine: the one measurement primitive every benchmark goes through. May import core and platform."""
