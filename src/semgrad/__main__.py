from semgrad.cli import main

main()
