#!/usr/bin/env bash
# The one-minute demo behind `make demo`: the Instantly simulator with 50
# workspaces, agencyd on the embedded backend (no Redis), the workspaces
# registered from a generated CSV with `agencyctl workspaces import`, the
# five people of examples/people.csv onboarded into all of them with a
# progress bar, one team's access matrix, and the plan of examples/agency.yaml
# (access as code; planned only, nothing applied). Both servers keep running so
# you can try more commands; `make demo-stop` (this script with "stop")
# stops them.
#
# Settings (environment): BIN (bin), DEMO_DIR (/tmp/agencyplane-demo),
# DEMO_SIM_ADDR (127.0.0.1:8089), DEMO_GRPC_ADDR (127.0.0.1:9090),
# DEMO_HTTP_ADDR (127.0.0.1:8080), DEMO_LATENCY (100ms: Instantly-like),
# DEMO_RPS (5: each workspace's rate limit, low so that the progress bar has
# something to show; Instantly's is 100).
set -euo pipefail

BIN=${BIN:-bin}
DIR=${DEMO_DIR:-/tmp/agencyplane-demo}
SIM_ADDR=${DEMO_SIM_ADDR:-127.0.0.1:8089}
GRPC_ADDR=${DEMO_GRPC_ADDR:-127.0.0.1:9090}
HTTP_ADDR=${DEMO_HTTP_ADDR:-127.0.0.1:8080}
LATENCY=${DEMO_LATENCY:-100ms}
RPS=${DEMO_RPS:-5}
TOKEN=demo-admin-token-0001
HERE=$(cd "$(dirname "$0")" && pwd)

stop() {
	if [ -f "$DIR/pids" ]; then
		# Only the processes this script started, by their ids.
		while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$DIR/pids"
		rm -f "$DIR/pids"
		echo "demo stopped"
	fi
}

if [ "${1:-}" = "stop" ]; then
	stop
	exit 0
fi
stop >/dev/null
rm -rf "$DIR"
mkdir -p "$DIR"
start=$(date +%s)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Instantly simulator with 50 workspaces on $SIM_ADDR (latency $LATENCY, $RPS requests/s per workspace)"
"$BIN/instantly-sim" --addr "$SIM_ADDR" --workspaces 50 --latency "$LATENCY" --rps "$RPS" --rpm $((RPS * 60)) \
	>"$DIR/sim.txt" 2>"$DIR/sim.log" &
echo $! >>"$DIR/pids"
for _ in $(seq 1 100); do
	[ "$(wc -l <"$DIR/sim.txt")" -ge 50 ] && break
	kill -0 "$(head -1 "$DIR/pids")" 2>/dev/null || { cat "$DIR/sim.log"; exit 1; }
	sleep 0.1
done

step "agencyd on the embedded backend: gRPC $GRPC_ADDR, REST $HTTP_ADDR"
AGENCY_BOOTSTRAP_TOKEN=$TOKEN AGENCY_INSTANTLY_URL=http://$SIM_ADDR \
	"$BIN/agencyd" --grpc-addr "$GRPC_ADDR" --http-addr "$HTTP_ADDR" --instantly-rps "$RPS" --instantly-rpm $((RPS * 60)) \
	>"$DIR/agencyd.log" 2>&1 &
echo $! >>"$DIR/pids"
export AGENCY_ADDR=$GRPC_ADDR AGENCY_TOKEN=$TOKEN
for _ in $(seq 1 100); do
	"$BIN/agencyctl" workspaces list --timeout 1s >/dev/null 2>&1 && break
	kill -0 "$(tail -1 "$DIR/pids")" 2>/dev/null || { cat "$DIR/agencyd.log"; exit 1; }
	sleep 0.1
done

# The simulator printed "id name key" per workspace: demo-1..10 are team
# sdr-west, 11..25 sdr-east, 26..40 enterprise, the rest smb.
awk 'BEGIN { print "workspace_id,display_name,api_key,labels" }
	{ n = substr($2, 6) + 0
	  team = n <= 10 ? "sdr-west" : (n <= 25 ? "sdr-east" : (n <= 40 ? "enterprise" : "smb"))
	  printf "%s,Client %d,%s,team=%s;client=%s\n", $2, n, $3, team, $2 }' "$DIR/sim.txt" >"$DIR/workspaces.csv"

step "agencyctl workspaces import --csv workspaces.csv   (50 rows; safe to run twice)"
"$BIN/agencyctl" workspaces import --csv "$DIR/workspaces.csv" | tail -4

step "agencyctl onboard --csv examples/people.csv --all --yes   (5 people × 50 workspaces)"
"$BIN/agencyctl" onboard --csv "$HERE/people.csv" --all --yes

step "agencyctl access -l team=sdr-west"
"$BIN/agencyctl" access -l team=sdr-west

step "agencyctl plan -f examples/agency.yaml   (access as code: the diff, nothing is written)"
code=0
"$BIN/agencyctl" plan -f "$HERE/agency.yaml" >"$DIR/plan.txt" || code=$?
head -n 12 "$DIR/plan.txt"
echo "  … (the whole diff: $DIR/plan.txt)"
sed -n '/^over the limits\|^… and\|^Plan: \|^No changes/,$p' "$DIR/plan.txt"
echo "(exit code $code: 0 no changes, 3 changes, 1 failure)"
[ "$code" -eq 0 ] || [ "$code" -eq 3 ] || exit "$code"

cat <<EOF

Done in $(($(date +%s) - start))s. Both servers are still running; try:

  export AGENCY_ADDR=$GRPC_ADDR AGENCY_TOKEN=$TOKEN
  $BIN/agencyctl workspaces list -l team=sdr-east
  $BIN/agencyctl offboard bo.chen@agency.example -l team=sdr-west
  $BIN/agencyctl ops list
  $BIN/agencyctl keys audit -l team=smb
  $BIN/agencyctl apply -f examples/agency.yaml   # refused: over the file's removal limits (a guard rail)

Stop the demo with:  make demo-stop   (logs and CSV in $DIR)
EOF
