"""Allow `python -m mailbot`."""

from mailbot.cli import main

# Guarded: the judge pool's forkserver imports the main module, which must not start mailbot again.
if __name__ == "__main__":
    raise SystemExit(main())
