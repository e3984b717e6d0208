#!/bin/sh
# Install the offline checkers the deploy tests call: systemd-analyze (systemd), promtool (prometheus),
# kubernetes-validate and check-jsonschema (into the project's virtualenv). kubectl (for `kubectl kustomize`)
# is not in Debian's archive and must be preinstalled.
#
# Idempotent: installs only what is missing. Never fails the build: when something cannot be installed
# (not root, no apt-get, no network) it prints why and exits 0; the tests that need that tool then skip with a
# printed reason. Usage: scripts/install-check-tools.sh [PYTHON]   (default .venv/bin/python)

set -u
PYTHON="${1:-.venv/bin/python}"
say() { echo "install-check-tools: $*"; }

missing=""
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"

if [ -n "$missing" ]; then
    if [ "$(id -u)" != "0" ]; then
        say "not root: cannot apt-get install$missing; the checks that need them will skip"
    elif ! command -v apt-get >/dev/null 2>&1; then
        say "no apt-get: install$missing by hand; the checks that need them will skip"
    else
        # Keep postinst scripts from starting the Prometheus server (or anything else) while installing:
        # the standard policy-rc.d switch, only added when the host has none, removed afterwards.
        policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
                && policy=/usr/sbin/policy-rc.d
        fi
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086  # word splitting of the package list is intended
        if ! apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; then
            apt-get update -q >/dev/null 2>&1
            apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 \
                || say "apt-get install$missing failed (offline?); the checks that need them will skip"
        fi
        [ -n "$policy" ] && rm -f "$policy"
    fi
fi

if [ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1; then
    for pair in kubernetes_validate:kubernetes-validate check_jsonschema:check-jsonschema; do
        module="${pair%%:*}"
        package="${pair#*:}"
        if ! "$PYTHON" -c "import $module" >/dev/null 2>&1; then
            "$PYTHON" -m pip install -q "$package" >/dev/null 2>&1 \
                || say "pip install $package failed (offline?); the checks that need it will skip"
        fi
    done
else
    say "no python at $PYTHON: kubernetes-validate and check-jsonschema not installed"
fi

command -v kubectl >/dev/null 2>&1 || say "kubectl not found: the kustomize render checks will skip"
for tool in systemd-analyze promtool; do
    command -v "$tool" >/dev/null 2>&1 && say "$tool: $(command -v "$tool")"
done
exit 0
