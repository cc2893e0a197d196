#!/usr/bin/env bash
# deps/install.sh [LIST...]: install the Debian packages named in the lists
# (default deps/debian-packages.txt) that are not installed yet.
# As root it runs apt-get (with `apt-get update` first only when something
# is missing); otherwise it prints the apt-get line to run and fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lists=("$@")
if [ ${#lists[@]} -eq 0 ]; then
    lists=("$here/debian-packages.txt")
fi

wanted=()
for list in "${lists[@]}"; do
    if [ ! -r "$list" ]; then
        echo "deps/install.sh: cannot read $list" >&2
        exit 2
    fi
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line%%#*}"
        for pkg in $line; do
            wanted+=("$pkg")
        done
    done < "$list"
done

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps/install.sh: dpkg-query not found; this installer is for Debian 12." >&2
    echo "Install by hand: ${wanted[*]}" >&2
    exit 1
fi

missing=()
for pkg in "${wanted[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    if [ "$status" != "installed" ]; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "tide needs Debian packages that are not installed. Run:" >&2
    echo "" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    echo "" >&2
    echo "then run make again." >&2
    exit 1
fi

echo "deps/install.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
