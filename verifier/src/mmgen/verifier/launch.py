"""The `mmgen-verify` entry point, which imports the command-line interface only when it runs.

A large export is verified on spawned worker processes, and a spawned process first imports
its parent's main script again. The installed `mmgen-verify` script imports this module; were
it the CLI module, every worker would import typer and rich (about a third of a second of CPU
each) before checking a single entry.
"""


def main() -> None:
    from mmgen.verifier.cli import main as run

    run()
