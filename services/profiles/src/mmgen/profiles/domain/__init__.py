"""The profiles domain: the profile aggregate, its events, the reveal rule, search tokens."""
