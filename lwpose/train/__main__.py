"""``python -m lwpose.train STEP ...`` = ``lwpose train STEP ...``; the form torchrun needs:
``torchrun --nproc_per_node N -m lwpose.train run --config ...``."""
import sys

from lwpose.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
