import sys

from audiodiff.cli import main

sys.exit(main())
