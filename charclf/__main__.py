from charclf.cli import main

if __name__ == "__main__":  # `python -m charclf`, also as each process torchrun starts with -m
    main(prog_name="charclf")
