#!/bin/sh
# Install the Debian packages mailbot's tests need, only where they are missing:
# libmagic (python-magic's library), Chromium and its WebDriver (the case page's browser test,
# driven by selenium; never a browser downloaded at run time), and Dovecot (the real IMAP server
# the tests start). Works as root, through sudo as an ordinary user, and does nothing when all is present.
set -eu
here=$(dirname "$0")

missing=""
ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1' || missing="$missing libmagic1"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/chromedriver ] || missing="$missing chromium-driver"

if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-system-deps:$missing missing and neither root nor sudo is available" >&2
        exit 1
    fi
    # shellcheck disable=SC2086  # $missing is a list of package names
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
        || { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive \
             apt-get install -y --no-install-recommends $missing; }
fi
sh "$here/install-dovecot.sh"
