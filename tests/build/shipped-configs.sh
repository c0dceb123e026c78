#!/bin/sh
# The configurations shipped with the project load: the example and the
# one inside the Kubernetes ConfigMap. A declared message type must be in
# the loaded schemas.
echo "1..4"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
sidecar="$top_builddir/nats-sidecar"

check() { # name, file
	if "$sidecar" --check-config -c "$2" >"$tmp/out" 2>&1; then
		echo "ok - $1"
	else
		echo "not ok - $1"
		sed 's/^/# /' "$tmp/out"
	fi
}

check "examples/sidecar.yaml loads" "$top_srcdir/examples/sidecar.yaml"
# The ConfigMap holds the file as a block scalar indented by four spaces.
sed -n '/sidecar.yaml: |/,$p' "$top_srcdir/k8s/configmap.yaml" |
	tail -n +2 | sed 's/^    //' >"$tmp/k8s.yaml"
check "the k8s ConfigMap's sidecar.yaml loads" "$tmp/k8s.yaml"

refused() { # name, expected message, config text
	printf '%s\n' "$3" >"$tmp/bad.yaml"
	if "$sidecar" --check-config -c "$tmp/bad.yaml" >"$tmp/out" 2>&1; then
		echo "not ok - $1: accepted"
	elif [ $? -eq 2 ] && grep -q "$2" "$tmp/out"; then
		echo "ok - $1"
	else
		echo "not ok - $1"
		sed 's/^/# /' "$tmp/out"
	fi
}

sub='subscriptions: [{name: o, stream: S, durable: d, message_type: orders.v9.Nope}]'
refused "a message type without schemas is refused" \
	"message_type: no message type orders.v9.Nope in the schemas (none" "$sub"
refused "a message type missing from the schemas is refused" \
	"not.*in the loaded schemas\|in the loaded schemas" \
	"schemas: [\"$top_builddir/proto/events.desc\"]
$sub"
