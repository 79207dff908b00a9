"""mmgen.identity: accounts, passwords and tokens of the Multimedia Gen platform."""

__version__ = "0.1.0"
