"""Where test subprocesses run: the folder that holds the pyembed package these tests imported
(an in-place build, the installed package, or CI's ASan build). A child started there with
``python -c`` imports that same package — never a source checkout without a built extension,
which is what the clone's root holds when the README's commands install pyembed."""
import os

import pyembed

PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(pyembed.__file__)))
