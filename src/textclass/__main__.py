"""`python -m textclass <verb> ...`: the textclass command."""

from textclass.commands.main import main

main()
