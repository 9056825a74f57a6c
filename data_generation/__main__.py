import sys

from data_generation.cli import main

sys.exit(main())
