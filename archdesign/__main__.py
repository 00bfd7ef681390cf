from archdesign.cli import main

main()
