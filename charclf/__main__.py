from charclf.cli import main

main(prog_name="charclf")
