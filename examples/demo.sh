#!/bin/bash
# The demo: a local nats-server (JetStream, loopback, temporary store), the
# sidecar, a sample app in Python and real order events, then a summary of
# what happened. Installs what is missing and builds first.
#
# Environment: ORDERS (events to publish, default 2000), KEEP=1 keeps the
# temporary directory with every log.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
orders=${ORDERS:-2000}

echo "== installing what is missing and building (build/demo)"
bash tests/deps.sh
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
mkdir -p build/demo
(cd build/demo && { [ -f Makefile ] || ../../configure -q; } &&
	make -s -j"$(nproc)")

work=$(mktemp -d /tmp/nats-sidecar-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "== starting nats-server (JetStream) on a free loopback port"
nats-server -a 127.0.0.1 -p -1 -js -sd "$work/store" --ports_file_dir "$work" \
	>"$work/nats-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	port=$(sed -n 's/.*"nats:\/\/127.0.0.1:\([0-9]*\)".*/\1/p' "$work"/nats-server_*.ports 2>/dev/null || true)
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { echo "nats-server did not start"; cat "$work/nats-server.log"; exit 1; }
url=nats://127.0.0.1:$port
echo "   $url"

echo "== publishing $orders orders.created.v1 events (and the first 100 twice again)"
build/demo/examples/c/order_producer -s "$url" -n "$orders"
# The same Nats-Msg-Ids: the stream's duplicate window drops them.
build/demo/examples/c/order_producer -s "$url" -n 100 >/dev/null
# New Nats-Msg-Ids for the same events: stored, and left to the sidecar.
build/demo/examples/c/order_producer -s "$url" -n 100 -R >/dev/null

echo "== starting the sidecar and the sample app"
export NATS_SIDECAR_NATS_URL=$url NATS_SIDECAR_SOCKET=$work/app.sock \
	NATS_SIDECAR_DEDUP_PATH=$work/dedup NATS_SIDECAR_HTTP_LISTEN=127.0.0.1:0
build/demo/nats-sidecar -c examples/sidecar.yaml 2>"$work/sidecar.log" &
sidecar=$!
pids+=($sidecar)
for _ in $(seq 100); do [ -S "$work/app.sock" ] && break; sleep 0.1; done
"${PYTHON:-/usr/bin/python3}" examples/python/order_app.py --socket "$work/app.sock" \
	>"$work/app.log" 2>&1 &
app=$!
pids+=($app)

echo "== waiting until the app has handled every event"
for _ in $(seq 600); do
	handled=$(grep -c ' id=' "$work/app.log" || true)
	[ "$handled" -ge "$orders" ] && break
	sleep 0.1
done

# The republished copies come last in the stream: wait until the sidecar
# has acked them as duplicates (from its /metrics).
port=$(sed -n 's/.*"http.listening".*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/sidecar.log" | head -1)
duplicates() {
	"${PYTHON:-/usr/bin/python3}" -c '
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=2).read().decode()
print(int(sum(float(l.split()[-1]) for l in text.splitlines()
              if l.startswith("nats_sidecar_dedup_duplicates_total"))))' \
		"http://127.0.0.1:$port/metrics" 2>/dev/null || echo 0
}
for _ in $(seq 100); do
	[ "$(duplicates)" -ge 100 ] && break
	sleep 0.1
done
dups=$(duplicates)

echo "== draining the sidecar (SIGTERM)"
kill -TERM "$sidecar"
status=0
wait "$sidecar" || status=$?
wait "$app" 2>/dev/null || true

unique=$(sed -n 's/.* id=\([^:]*\):.*/\1/p' "$work/app.log" | sort -u | wc -l)
echo
echo "== summary"
echo "events published:           $orders, +100 with the same Nats-Msg-Ids (dropped by the stream's duplicate window), +100 with new ones"
echo "duplicates acked by dedup:  $dups (same message_id, never shown to the app)"
echo "deliveries the app handled: $(grep -c ' id=' "$work/app.log" || true) ($unique distinct message ids)"
echo "sidecar exit status:        $status"
echo "sample of what the app saw:"
grep -m3 ' id=' "$work/app.log" | cut -c1-150 | sed 's/^/   /'
echo "sidecar log events:"
sed -n 's/.*"event":"\([^"]*\)".*/\1/p' "$work/sidecar.log" | sort | uniq -c | sed 's/^/   /'
[ "$status" -eq 0 ] && [ "$unique" -ge "$orders" ] && [ "$dups" -ge 100 ] &&
	[ "$(grep -c " id=" "$work/app.log")" -eq "$unique" ]
