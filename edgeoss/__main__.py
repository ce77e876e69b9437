from edgeoss.cli import main

main()
