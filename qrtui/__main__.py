import sys

from qrtui.cli import main

sys.exit(main())
