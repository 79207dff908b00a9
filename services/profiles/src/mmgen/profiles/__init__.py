"""mmgen.profiles: creator profiles for client selection, their search, sensitive-field reveals."""

__version__ = "0.1.0"
