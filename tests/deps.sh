#!/bin/sh
# Installs what building, testing and running nats-sidecar needs on
# Debian 12, skipping what is already there. Safe to run again.
set -eu

PACKAGES="
	autoconf automake make gcc clang libclang-rt-14-dev clang-format git pkg-config
	libnats-dev libev-dev libssl-dev libprotobuf-c-dev protobuf-c-compiler
	protobuf-compiler libprotobuf-dev liblmdb-dev libyaml-dev libjansson-dev libyajl-dev libcmocka-dev
	nats-server openssl python3 python3-protobuf procps
"

missing=
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
	--no-install-recommends $missing >/dev/null
