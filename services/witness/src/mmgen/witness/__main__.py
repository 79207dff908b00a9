"""`python -m mmgen.witness …`: the `mmgen-witness` command."""

from mmgen.witness.cli import main

main()
