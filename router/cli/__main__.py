import sys

from tierline.router.cli import main

sys.exit(main())
