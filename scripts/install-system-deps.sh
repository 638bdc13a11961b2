#!/bin/sh
# Install the Debian packages mailbot's tests need, only where they are missing:
# libmagic (python-magic's library) and Dovecot (the real IMAP server the tests start).
# Works as root, through sudo as an ordinary user, and does nothing when all is present.
set -eu
here=$(dirname "$0")

if ! ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1'; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-system-deps: libmagic1 is missing and neither root nor sudo is available" >&2
        exit 1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libmagic1 \
        || { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive \
             apt-get install -y --no-install-recommends libmagic1; }
fi
sh "$here/install-dovecot.sh"
