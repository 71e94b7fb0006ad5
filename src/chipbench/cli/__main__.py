import sys

from chipbench.cli import main  # first: Ctrl-C while torch imports is one line

sys.exit(main())
