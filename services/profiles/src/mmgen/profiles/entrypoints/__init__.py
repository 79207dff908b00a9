"""HTTP and messaging edges of the profiles service."""
