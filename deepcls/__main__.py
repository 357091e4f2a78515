import sys

from deepcls.cli import main

sys.exit(main())
