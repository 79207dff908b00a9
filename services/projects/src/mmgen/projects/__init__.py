"""mmgen.projects: client projects, membership, messages, encrypted files and disclosures."""

__version__ = "0.1.0"
