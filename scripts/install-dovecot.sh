#!/bin/sh
# Install Debian's dovecot-imapd for the IMAP tests, if the dovecot binary is missing.
#
# Why: the IMAP intake is tested against a real Dovecot that the tests start themselves on a
# loopback port with their own config. The system service must never run, so it is blocked
# from starting during the install (policy-rc.d) and stopped/disabled if it started anyway.
# Idempotent; works as root or, through sudo, as an ordinary user.
set -eu

PATH="$PATH:/usr/sbin:/sbin"
if command -v dovecot >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-dovecot: dovecot is missing and neither root nor sudo is available" >&2
    exit 1
fi

# Keep the package's postinst from starting the system instance (exit 101 = action forbidden).
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    CREATED_POLICY="yes"
fi
cleanup() {
    if [ -n "$CREATED_POLICY" ]; then
        $SUDO rm -f "$POLICY"
    fi
}
trap cleanup EXIT

$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dovecot-imapd \
    || { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y --no-install-recommends dovecot-imapd; }

# Belt and braces: should a service manager have started it anyway, stop and disable it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
fi
command -v dovecot >/dev/null 2>&1
