#!/usr/bin/env bash
# alerts.sh: check the Prometheus alerting rules (packaging/prometheus/) with promtool: the
# rules file is valid, and its unit tests fire each alert when they should and not otherwise.
# promtool comes with Debian's prometheus package, installed when missing (its service is
# not started by this script).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../packaging/prometheus"

if ! command -v promtool >/dev/null 2>&1; then
    echo "alerts: installing prometheus (for promtool)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check rules keyring-okv-alerts.yml
promtool test rules keyring-okv-alerts.test.yml
