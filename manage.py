#!/usr/bin/env python
from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    if "SECRET_KEY" not in os.environ and "DEBUG" not in os.environ:
        # A checkout's fresh shell (README: `manage.py issue_token demo`) means the local
        # development setup `make run` uses. Production sets SECRET_KEY, so it is never
        # affected; the web server (WSGI) never takes this default.
        os.environ["DEBUG"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
