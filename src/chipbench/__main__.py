import sys

from chipbench.cli.app import main

sys.exit(main())
