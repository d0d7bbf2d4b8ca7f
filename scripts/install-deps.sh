#!/bin/sh
# Every Debian 12 package that trunkline's build, daemon, tests and fuzzing need: the one
# list. Idempotent; run as root (or with sudo available).
set -eu

PACKAGES="
  build-essential pkg-config
  libuv1-dev libmicrohttpd-dev libjansson-dev libsqlite3-dev libsodium-dev libssl-dev
  libcurl4-openssl-dev libc-ares-dev libsrtp2-dev libwslay-dev libespeak-ng-dev espeak-ng-data
  libcmocka-dev
  python3 python3-pytest python3-requests python3-yaml python3-dnslib python3-pylibsrtp
  python3-websockets
  sip-tester sqlite3 curl openssl iproute2 procps util-linux
  libpq-dev postgresql
  kamailio kamailio-tls-modules baresip-core gdb
  clang-14 libclang-rt-14-dev clang-format
  chromium chromium-driver python3-selenium
"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive

# kamailio is a test peer and the benchmark's reference, not a service to run here: its
# package enables and starts kamailio.service on port 5060 — trunkline's port, so `make
# run` would fail on a systemd host. Keep it from starting during the install (policy-rc.d
# is honoured by invoke-rc.d and deb-systemd-invoke) and disable it afterwards.
new_kamailio=false
case " $missing " in *" kamailio "*) new_kamailio=true ;; esac
made_policy=false
if $new_kamailio && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 0755 /usr/sbin/policy-rc.d
    made_policy=true
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi

$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing

if $made_policy; then
    $SUDO rm -f /usr/sbin/policy-rc.d
    trap - EXIT
fi
if $new_kamailio && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now kamailio.service >/dev/null 2>&1 || true
fi
