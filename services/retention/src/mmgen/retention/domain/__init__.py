"""Pure domain of the retention service: no web, database or broker code."""
