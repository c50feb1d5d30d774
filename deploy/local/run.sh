#!/usr/bin/env bash
# A local overlay made of separate node processes on loopback: builds Overlay.Host once, starts
# N nodes joined through the first one, waits until every node is healthy and knows every other,
# sends a multi-hop ping through the overlay, and stops every process it started.
# Exit code: the ping's (0 ok, 1 a tunnel failed, 3 could not join), or 2 usage error,
# 3 the overlay did not form in time, 4 could not start (build, port in use, a node exited).
# See README.md beside this file.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: deploy/local/run.sh [--nodes N] [--relays R] [--count K] [--base-port P] [--keep]

  --nodes N       node processes to start (default 5)
  --relays R      relays per round trip, at most N - 1 (default 3)
  --count K       round trips the ping sends (default 3)
  --base-port P   node i listens on 127.0.0.1:(P + i); node 0 is the seed (default 7400)
  --keep          leave the nodes running after the ping until Ctrl+C

environment: OVERLAY_CONFIGURATION (default Release), OVERLAY_SKIP_BUILD=1 (use the existing
build), OVERLAY_HOST_DLL (an explicit Overlay.Host.dll), OVERLAY_READY_TIMEOUT (seconds the
overlay may take to form, default 60), OVERLAY_PING_TIMEOUT (the ping's --timeout, default 30).
USAGE
}

fail_usage() {
  echo "run.sh: $*" >&2
  usage >&2
  exit 2
}

NODES=5
RELAYS=3
COUNT=3
BASE_PORT=7400
KEEP=0
while (($#)); do
  case "$1" in
    --nodes | --relays | --count | --base-port)
      (($# >= 2)) || fail_usage "$1 needs a value"
      [[ $2 =~ ^[0-9]{1,6}$ ]] || fail_usage "$1 needs a number, not '$2'"
      case "$1" in
        --nodes) NODES=$((10#$2)) ;;
        --relays) RELAYS=$((10#$2)) ;;
        --count) COUNT=$((10#$2)) ;;
        --base-port) BASE_PORT=$((10#$2)) ;;
      esac
      shift 2
      ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) fail_usage "unknown argument '$1'" ;;
  esac
done

((NODES >= 1 && NODES <= 256)) || fail_usage "--nodes must be between 1 and 256"
((RELAYS <= NODES - 1)) || fail_usage "--relays $RELAYS needs at least $((RELAYS + 1)) nodes (the relays and a destination; the ping is the origin)"
((RELAYS <= 254)) || fail_usage "--relays must be at most 254"
((COUNT >= 1)) || fail_usage "--count must be at least 1"
((BASE_PORT >= 1024 && BASE_PORT + NODES - 1 <= 65535)) || fail_usage "--base-port must leave room for $NODES ports between 1024 and 65535"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CONFIGURATION=${OVERLAY_CONFIGURATION:-Release}
DLL=${OVERLAY_HOST_DLL:-$ROOT/src/Overlay.Host/bin/$CONFIGURATION/net10.0/Overlay.Host.dll}
CLI=${OVERLAY_CLI_DLL:-$ROOT/src/Overlay.Cli/bin/$CONFIGURATION/net10.0/overlay.dll}
CONTROL_BASE=$((BASE_PORT + NODES))   # node i's control API listens on CONTROL_BASE + i
READY_TIMEOUT=${OVERLAY_READY_TIMEOUT:-60}
PING_TIMEOUT=${OVERLAY_PING_TIMEOUT:-30}
# The network's MaxRelays: the default 32, raised (as the devnet does) when more relays are asked for.
MAX_RELAYS=$((RELAYS > 32 ? RELAYS : 32))
# Fast gossip on small overlays; on large ones it would only burn CPU.
if ((NODES <= 32)); then GOSSIP=00:00:00.250; else GOSSIP=00:00:01; fi
# A node lists at most 64 peers in a directory exchange (Overlay:Directory:MaxDescriptorsPerExchange).
PEERS=$((NODES - 1 < 64 ? NODES - 1 : 64))
SEED=https://127.0.0.1:$BASE_PORT
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

PIDS=()        # the node processes this script started, and only those
HELPER=        # the health or ping process running now
FINAL_RC=      # the exit code once the ping has run
WORK=

now_ms() {
  local t=${EPOCHREALTIME//[.,]/}
  echo $((t / 1000))
}

elapsed() {
  local ms=$(($(now_ms) - STARTED_MS))
  printf '%d.%02d s' $((ms / 1000)) $((ms % 1000 / 10))
}

stop_processes() {
  local pid alive tries
  local started=("${PIDS[@]}" ${HELPER:+"$HELPER"})
  ((${#started[@]})) || return 0
  for pid in "${started[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  # Graceful shutdown first (SIGTERM stops the host); whatever still runs after 15 s is killed.
  for ((tries = 0; tries < 150; tries++)); do
    alive=0
    for pid in "${started[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${started[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait "${started[@]}" 2>/dev/null || true
}

print_log_tails() {
  local i
  for ((i = 0; i < ${#PIDS[@]}; i++)); do
    echo "--- node$i ($WORK/logs/node$i.log), last 20 lines ---"
    tail -n 20 "$WORK/logs/node$i.log" 2>/dev/null || true
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((rc != 0)) && ((${#PIDS[@]})); then
    print_log_tails
  fi
  if ((${#PIDS[@]})); then
    echo "run.sh: stopping ${#PIDS[@]} nodes"
  fi
  stop_processes
  if [[ -n $WORK ]]; then
    rm -rf "$WORK/data"
    echo "run.sh: logs are in $WORK/logs"
  fi
  exit "$rc"
}

trap cleanup EXIT
trap 'exit "${FINAL_RC:-130}"' INT
trap 'exit "${FINAL_RC:-143}"' TERM

# Runs a helper in the background and waits for it, so a signal interrupts the wait at once.
run_helper() {
  "$@" </dev/null &
  HELPER=$!
  local rc=0
  wait "$HELPER" || rc=$?
  HELPER=
  return "$rc"
}

port_in_use() {
  if command -v ss >/dev/null 2>&1 && [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; then
    return 0
  fi
  (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

command -v dotnet >/dev/null 2>&1 || { echo "run.sh: the .NET SDK (dotnet) is required on PATH" >&2; exit 4; }

if [[ ${OVERLAY_SKIP_BUILD:-0} != 1 ]]; then
  echo "run.sh: building src/Overlay.Host ($CONFIGURATION)"
  dotnet build -c "$CONFIGURATION" "$ROOT/src/Overlay.Host" -nologo -v quiet || { echo "run.sh: the build failed" >&2; exit 4; }
  dotnet build -c "$CONFIGURATION" "$ROOT/src/Overlay.Cli" -nologo -v quiet || { echo "run.sh: the build failed" >&2; exit 4; }
fi
[[ -f $DLL ]] || { echo "run.sh: $DLL does not exist (build with: dotnet build -c $CONFIGURATION src/Overlay.Host)" >&2; exit 4; }
[[ -f $CLI ]] || { echo "run.sh: $CLI does not exist (build with: dotnet build -c $CONFIGURATION src/Overlay.Cli)" >&2; exit 4; }

for ((i = 0; i < 2 * NODES; i++)); do
  if port_in_use $((BASE_PORT + i)); then
    echo "run.sh: port $((BASE_PORT + i)) on 127.0.0.1 is in use; pick another --base-port (ports $BASE_PORT-$((BASE_PORT + 2 * NODES - 1)) must be free: links, then control APIs)" >&2
    exit 4
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/overlay-localnet.XXXXXX")
mkdir -p "$WORK/logs" "$WORK/data"
STARTED_MS=$(now_ms)
echo "run.sh: starting $NODES nodes on 127.0.0.1:$BASE_PORT-$((BASE_PORT + NODES - 1)) (seed $SEED, MaxRelays $MAX_RELAYS)"
echo "run.sh: logs: $WORK/logs"
URLS=()
for ((i = 0; i < NODES; i++)); do
  # TLS links, as in production: every node presents a certificate proving its node id.
  url=https://127.0.0.1:$((BASE_PORT + i))
  URLS+=(--url "$url")
  args=(
    "--Overlay:Link:Url=$url"
    "--Overlay:Control:Url=http://127.0.0.1:$((CONTROL_BASE + i))"
    "--Overlay:DataDirectory=$WORK/data/node$i"
    "--Overlay:Network:MaxRelays=$MAX_RELAYS"
    "--Overlay:Directory:GossipInterval=$GOSSIP"
    # Every node is on 127.0.0.1: loopback peers may be dialed, and the per-address limits and
    # one-hop-per-block routes (meant for one party per address) are lifted (docs/operations.md).
    "--Overlay:Link:AllowedPeerNetworks:0=127.0.0.0/8"
    "--Overlay:Directory:RouteDiversity=false"
    "--Overlay:Directory:MaxPeersPerAddressBlock=1000000"
    "--Overlay:Directory:CallsPerSecondPerSource=1000000"
    "--Overlay:Directory:CallBurstPerSource=1000000"
    # The node's own events at Information; ASP.NET's per-request lines would drown them (gossip runs 4 times a second).
    "--Logging:LogLevel:Microsoft.AspNetCore=Warning"
  )
  if ((i > 0)); then
    args+=("--Overlay:Directory:Seeds:0=$SEED")
  fi
  dotnet "$DLL" "${args[@]}" >"$WORK/logs/node$i.log" 2>&1 </dev/null &
  PIDS+=($!)
done

# Ready = every node answers SERVING on grpc.health.v1.Health/Check and lists every other node as
# up (the `health` verb, over TLS with a throwaway node certificate); only then can any relay
# reach any next hop.
echo "run.sh: waiting for every node to be healthy and to know the other $PEERS"
dotnet "$DLL" health "${URLS[@]}" --peers "$PEERS" --timeout "$READY_TIMEOUT" </dev/null &
HELPER=$!
while kill -0 "$HELPER" 2>/dev/null; do
  for ((i = 0; i < NODES; i++)); do
    if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
      rc=0
      wait "${PIDS[i]}" || rc=$?
      echo "run.sh: node$i exited with code $rc while the overlay was forming" >&2
      exit 4
    fi
  done
  sleep 0.2
done
ready_rc=0
wait "$HELPER" || ready_rc=$?
HELPER=
if ((ready_rc != 0)); then
  for ((i = 0; i < NODES; i++)); do
    if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
      echo "run.sh: node$i exited while the overlay was forming" >&2
      exit 4
    fi
  done
  if ((ready_rc == 3)); then
    echo "run.sh: the overlay did not form within $READY_TIMEOUT s" >&2
    exit 3
  fi
  echo "run.sh: the readiness check failed (health exit code $ready_rc)" >&2
  exit 4
fi
echo "run.sh: $NODES nodes healthy, each knows the other $PEERS, after $(elapsed)"

# A round trip through node 0's control API with the `overlay` CLI, node 0 being the origin (so
# it needs one node more). It runs first: the `ping` verb's short-lived node leaves the overlay
# when it is done, and peers only notice at their next gossip round.
cli_rc=0
if ((RELAYS <= NODES - 2)); then
  echo "run.sh: overlay --node http://127.0.0.1:$CONTROL_BASE ping --relays $RELAYS --count $COUNT"
  run_helper dotnet "$CLI" --node "http://127.0.0.1:$CONTROL_BASE" --token-file "$WORK/data/node0/control.token" \
    ping --relays "$RELAYS" --count "$COUNT" || cli_rc=$?
  echo "run.sh: overlay ping exited with code $cli_rc after $(elapsed)"
fi

echo "run.sh: ping --seed $SEED --relays $RELAYS --count $COUNT"
ping_rc=0
run_helper dotnet "$DLL" ping --seed "$SEED" --relays "$RELAYS" --count "$COUNT" --max-relays "$MAX_RELAYS" --timeout "$PING_TIMEOUT" || ping_rc=$?
echo "run.sh: ping exited with code $ping_rc after $(elapsed)"
if ((ping_rc == 0 && cli_rc != 0)); then
  ping_rc=1
fi
FINAL_RC=$ping_rc

if ((KEEP)); then
  echo "run.sh: --keep: the nodes keep running on 127.0.0.1:$BASE_PORT-$((BASE_PORT + NODES - 1)); try"
  echo "  dotnet $DLL ping --seed $SEED --relays $RELAYS --max-relays $MAX_RELAYS"
  echo "run.sh: press Ctrl+C to stop them"
  wait "${PIDS[@]}" || true
fi
exit "$ping_rc"
