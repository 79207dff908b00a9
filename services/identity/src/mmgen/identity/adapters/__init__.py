"""Adapters: MongoDB read models and key ring, argon2 hashing, keyed hashes, the denial recorder."""
