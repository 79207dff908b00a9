"""`python -m mmgen.verifier …`: the `mmgen-verify` command."""

from mmgen.verifier.cli import main

main()
