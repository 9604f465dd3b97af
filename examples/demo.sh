#!/usr/bin/env bash
# ferryman demo: two hello backends (v1 on :8081, v2 on :8082) behind ferryman on :8000 (HTTP) and
# :8443 (HTTPS with a certificate from ferryman's local CA, no internet needed), configured by
# Traefik v3 files (examples/ferryman.yml = examples/traefik.yml + the localCA resolver, and
# examples/dynamic/routes.yml).
#   ./scripts/setup.sh && examples/demo.sh
# Ctrl-C stops everything. Try another proxy on the same files with
#   DEMO_PROXY=/path/to/traefik examples/demo.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."   # relative paths in the configs are resolved from the repo root
PY=.venv/bin/python
PROXY=${DEMO_PROXY:-.venv/bin/ferryman}
STATIC=examples/ferryman.yml
[ -n "${DEMO_PROXY:-}" ] && STATIC=examples/traefik.yml   # other proxies: plain Traefik configuration
DEMO_CA=.ferryman-demo-ca/root.pem
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/ferryman-demo.XXXXXX")

if [ ! -x "$PY" ] || { [ -z "${DEMO_PROXY:-}" ] && [ ! -x "$PROXY" ]; }; then
    echo "demo.sh: .venv is not set up; run ./scripts/setup.sh first" >&2
    exit 1
fi

port_busy() { "$PY" -c 'import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"; }
for p in 8000 8443 8081 8082; do
    if port_busy "$p"; then
        echo "demo.sh: port $p is already in use; stop whatever listens there and retry" >&2
        exit 1
    fi
done

pids=()
cleanup() {
    trap - EXIT INT TERM
    if [ ${#pids[@]} -gt 0 ]; then
        echo
        echo "demo.sh: stopping (logs kept in $LOGDIR)"
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$PY" examples/hello.py --port 8081 --name v1 >"$LOGDIR/hello-v1.out" 2>"$LOGDIR/hello-v1.log" &
pids+=($!)
"$PY" examples/hello.py --port 8082 --name v2 >"$LOGDIR/hello-v2.out" 2>"$LOGDIR/hello-v2.log" &
pids+=($!)
"$PROXY" --configFile="$STATIC" > >(tee "$LOGDIR/proxy.log") 2>&1 &
pids+=($!)
proxy_pid=$!

# Poll until the proxy routes to v1 (backends up, config loaded), 30 s at most; with ferryman,
# also until HTTPS on :8443 verifies against the local CA's root.
ready=$("$PY" - "${DEMO_PROXY:+plain}" "$DEMO_CA" <<'PY'
import http.client, ssl, sys, time
plain, cafile = sys.argv[1] == "plain", sys.argv[2]
end = time.monotonic() + 30
def hello(conn):
    conn.request("GET", "/", headers={"Host": "localhost"})
    return conn.getresponse().read() == b"Hello from v1\n"
while time.monotonic() < end:
    try:
        if hello(http.client.HTTPConnection("127.0.0.1", 8000, timeout=1)) and (plain or hello(
                http.client.HTTPSConnection("localhost", 8443, timeout=1,
                                            context=ssl.create_default_context(cafile=cafile)))):
            print("ok")
            break
    except (OSError, ssl.SSLError):
        pass
    time.sleep(0.2)
PY
)
if [ "$ready" != "ok" ]; then
    echo "demo.sh: the proxy did not become ready within 30 s; see $LOGDIR" >&2
    exit 1
fi

cat <<MSG

  ferryman demo is up: proxy on http://127.0.0.1:8000 and https://localhost:8443 (certificate from
  a local CA, root in $DEMO_CA), backends v1 :8081 and v2 :8082
  (logs in $LOGDIR). Try:

    curl -H 'Host: localhost' http://127.0.0.1:8000/
    curl -H 'Host: localhost' -H 'X-Release-Stage: canary' http://127.0.0.1:8000/
    curl -H 'Host: localhost' 'http://127.0.0.1:8000/?v=beta'
    for i in \$(seq 20); do curl -s -H 'Host: localhost' http://127.0.0.1:8000/split; done | sort | uniq -c
    curl -H 'Host: localhost' http://127.0.0.1:8000/echo
    curl --cacert $DEMO_CA https://localhost:8443/     # HTTPS from the local CA

  Edit examples/dynamic/routes.yml while it runs: changes apply without a restart.
  Press Ctrl-C to stop.

MSG

# Stay until Ctrl-C, or until any child exits (then stop the rest).
set +e
wait -n "${pids[@]}"
status=$?
set -e
if kill -0 "$proxy_pid" 2>/dev/null; then
    echo "demo.sh: a backend exited (status $status); stopping" >&2
else
    echo "demo.sh: the proxy exited (status $status); stopping" >&2
fi
exit 1
