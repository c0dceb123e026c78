#!/bin/sh
# A missing dependency stops configure with a line naming the Debian
# package. libev has no .pc file, so hide it through configure's cache
# variables; libnats is hidden by an empty pkg-config search path.
echo "1..2"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
configure="$(cd "$top_srcdir" && pwd)/configure"

check() { # name, expected message, configure environment...
	name=$1 want=$2
	shift 2
	if (cd "$tmp" && env "$@" "$configure" --quiet >out 2>&1); then
		echo "not ok - $name: configure succeeded"
	elif grep -q "$want" "$tmp/out"; then
		echo "ok - $name"
	else
		echo "not ok - $name: no '$want' in:"
		sed 's/^/# /' "$tmp/out"
	fi
}

check "missing libev names libev-dev" \
	"install the Debian package libev-dev" ac_cv_header_ev_h=no
check "missing libnats names libnats-dev" \
	"install the Debian package libnats-dev" \
	PKG_CONFIG_LIBDIR="$tmp/none" PKG_CONFIG_PATH=
