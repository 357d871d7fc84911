#!/usr/bin/env bash
# Runs tp_mlp across two simulated hosts on this machine (network namespaces joined by a
# veth pair, optionally bandwidth-shaped) and removes them again, whatever happens.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/env.sh"
HOST_A=10.213.7.1  # runs mpirun and rank 0
HOST_B=10.213.7.2  # runs rank 1
PREFIX_LENGTH=30   # a /30 holds exactly these two addresses
MIN_BURST=131072   # bytes: two of the veth's 64 KiB GSO packets, or tbf splits them
QUEUE_MS=2         # queue beyond the burst, in milliseconds at the rate: see --help

usage() {
  cat <<'EOF'
Usage: scripts/two_hosts.sh [OPTIONS] [-- TP_MLP_FLAGS...]

Runs tp_mlp as two "hosts" on this machine, one rank on each, talking TCP over a virtual
Ethernet link that can be shaped to a given bandwidth. It builds, and removes again on every
way out (success, failure, Ctrl-C, SIGTERM, SIGHUP, --timeout):

  host A  network namespace tp_mlp_a_PID, address 10.213.7.1/30: mpirun and rank 0
  host B  network namespace tp_mlp_b_PID, address 10.213.7.2/30: rank 1
  link    veth pair tpmlpPID, one end in each namespace (never among this machine's own
          interfaces); with --gbit, a tbf qdisc on each end shapes each direction

PID is this script's process id. Open MPI reaches host B through a remote agent that enters
B's namespace with `ip netns exec` instead of logging in with ssh (--mca plm_rsh_agent), and is
held to TCP over the link for the MPI traffic (pml ob1, btl tcp,self: no shared memory between
the ranks) and for its own control channel (oob_tcp_if_include). Ranks are not bound to cores.
Every temporary file, Open MPI's session files included, lives in one mktemp -d directory under
$TMPDIR (else /tmp). Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), iproute2 (ip, and tc for
--gbit) and Open MPI.

Options:
  --gbit G             shape each direction of the link to G Gbit/s on the wire: 0.001..100,
                       at most three decimals (default: unshaped, as fast as the veth goes)
  --binary PATH        the program (default: $TP_MLP if set, else build/tp_mlp in the repo)
  --mpiexec PATH       Open MPI's launcher (default: mpirun)
  --mpiexec-flags "F"  more launcher flags, split at whitespace (no quoting), e.g.
                       "--mca btl_tcp_links 2"
  --timeout SECONDS    stop the job after this long: 1..86400 (default: 600)
  -h, --help           this text
  --                   ends the options: every later argument goes to tp_mlp. Unless one of
                       them is --tp-size or -t, --tp-size 2 is added (tp_mlp's default, 4,
                       needs more than these 2 ranks).
Options also take the form --option=VALUE; each may be given once.

Examples:
  scripts/two_hosts.sh
  scripts/two_hosts.sh --gbit 10 -- --hidden-size 1024 --batch-size 8 --seq-len 128 \
      --scheme megatron --iterations 20
  scripts/two_hosts.sh --gbit 1 --timeout 120 -- --backward --json /tmp/report.json

Shaping: tbf with a burst of half a millisecond at the rate (at least 128 KiB), so that a timer
firing late does not cost bandwidth, and a queue of 2 ms at the rate beyond it, like a NIC's:
bulk TCP still fills the link, while MPI's small protocol messages do not wait behind megabytes
of data (a 16 MiB queue made the 1 Gbit/s all-reduce 40% slower). TCP delivers 1448/1514 of
the rate to the program (headers). A rate above what the veth itself carries shapes nothing:
measure it (15-18 Gbit/s on the idle 2-core machine this was written on, 6 when it was busy,
so there --gbit 25 shapes nothing).

Exit status:
  tp_mlp's, passed through by mpirun: 0 verified, 2 configuration refused, 4 verification
        failed, 6 a rank stopped responding, 100-120 bad tp_mlp flags (README.md, Exit status)
  64    bad options, or the binary or launcher is missing or unusable
  70    setting up the hosts failed unexpectedly (the failing command's own message precedes)
  77    this machine cannot make the hosts: not root, no CAP_SYS_ADMIN or CAP_NET_ADMIN, no ip,
        no tc (with --gbit), no veth or tbf in the kernel
  124   the job ran past --timeout and was stopped
  129, 130, 143  stopped by SIGHUP, SIGINT, SIGTERM
EOF
}

die() {
  local status=$1
  shift
  echo "two_hosts.sh: $*" >&2
  exit "$status"
}
usage_error() { die 64 "$* (see --help)"; }
cannot_run() { die 77 "cannot run here: $*"; }
one_line() { echo "${1//$'\n'/; }"; }

# A command that fails unexpectedly must not exit with a status that means something else
# (tp_mlp's 1 or 2); the EXIT trap still cleans up.
trap 'echo "two_hosts.sh: line $LINENO: unexpected failure (status $?)" >&2; exit 70' ERR

gbit=
binary=${TP_MLP:-$ROOT/build/tp_mlp}
mpiexec=mpirun
mpiexec_flags=()
timeout_seconds=600
valued=" --gbit --binary --mpiexec --mpiexec-flags --timeout "
declare -A seen=()
while (( $# > 0 )); do
  case $1 in
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    --*=*) name=${1%%=*} value=${1#*=}; shift ;;
    *)
      name=$1
      shift
      [[ $valued == *" $name "* ]] || usage_error "unknown option '$name'; tp_mlp's own flags go after --"
      (( $# > 0 )) || usage_error "$name needs a value"
      value=$1
      shift ;;
  esac
  [[ $valued == *" $name "* ]] || usage_error "unknown option '$name'; tp_mlp's own flags go after --"
  [[ -z ${seen[$name]:-} ]] || usage_error "$name given twice"
  seen[$name]=1
  case $name in
    --gbit) gbit=$value ;;
    --binary) binary=$value ;;
    --mpiexec) mpiexec=$value ;;
    --mpiexec-flags) read -r -a mpiexec_flags <<<"$value" ;;
    --timeout) timeout_seconds=$value ;;
  esac
done
program_flags=("$@")

tp_size_given=
for flag in "${program_flags[@]}"; do
  case $flag in --tp-size|--tp-size=*|-t*) tp_size_given=1 ;; esac
done
[[ -n $tp_size_given ]] || program_flags=(--tp-size 2 "${program_flags[@]}")

if [[ -n ${seen[--gbit]:-} ]]; then
  # Whole Mbit/s in integer arithmetic: tc takes bit/s, and bash has no decimals.
  [[ $gbit =~ ^([0-9]{1,3})(\.([0-9]{1,3}))?$ ]] \
    || usage_error "--gbit: must be a number of Gbit/s in 0.001..100 with at most three decimals, not '$gbit'"
  decimals=${BASH_REMATCH[3]}000
  mbit=$(( 10#${BASH_REMATCH[1]} * 1000 + 10#${decimals:0:3} ))
  (( mbit >= 1 && mbit <= 100000 )) \
    || usage_error "--gbit: must be a number of Gbit/s in 0.001..100 with at most three decimals, not '$gbit'"
  rate=$(( mbit * 1000000 ))  # bit/s
  burst=$(( rate / 16000 ))   # bytes sent in half a millisecond
  (( burst >= MIN_BURST )) || burst=$MIN_BURST
  limit=$(( burst + rate * QUEUE_MS / 8000 ))
fi
if [[ ! $timeout_seconds =~ ^[0-9]{1,5}$ ]] || (( 10#$timeout_seconds < 1 || 10#$timeout_seconds > 86400 )); then
  usage_error "--timeout: must be a whole number of seconds in 1..86400, not '$timeout_seconds'"
fi

if [[ ! -f $binary || ! -x $binary ]]; then
  [[ -z ${seen[--binary]:-} ]] || die 64 "--binary $binary: no executable file there"
  [[ -z ${TP_MLP:-} ]] || die 64 "TP_MLP=$binary: no executable file there"
  die 64 "$binary: no executable file there; build it (cmake --preset release && cmake --build --preset release) or pass --binary"
fi
binary=$(realpath -- "$binary")
resolved=$(command -v -- "$mpiexec") || die 64 "--mpiexec $mpiexec: not found (Open MPI's mpirun is in Debian's openmpi-bin)"
version=$(timeout 10 "$resolved" --version 2>&1) || true
# Open MPI 4's mpirun says "(Open MPI)", its mpiexec and orterun "(OpenRTE)".
[[ $version == *"(Open MPI)"* || $version == *"(OpenRTE)"* ]] \
  || die 64 "--mpiexec $mpiexec is not Open MPI's launcher (its --version says: ${version%%$'\n'*}); the hosts are reached through Open MPI's --mca plm_rsh_agent"

command -v ip >/dev/null || cannot_run "no ip command (Debian package iproute2)"
[[ -z $gbit ]] || command -v tc >/dev/null || cannot_run "--gbit needs the tc command (Debian package iproute2)"

ns_a=tp_mlp_a_$$
ns_b=tp_mlp_b_$$
veth=tpmlp$$  # the same name at both ends, one end in each namespace
tmp=
job=

# Everything named after this run is removed here, also on a signal or a failure halfway.
cleanup() {
  local status=$? pids
  trap '' HUP INT TERM  # a second Ctrl-C must not cut the cleanup short
  trap - ERR
  set +e
  {  # silences bash's "Killed" report of the job too
    [[ -z $job ]] || kill -KILL -- "-$job" "$job"  # timeout's process group
    # Whatever runs inside the hosts (the remote rank is not in that group); a process being
    # launched can appear while the others die, hence the repeat.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      pids=$(ip netns pids "$ns_a"; ip netns pids "$ns_b")
      [[ -n $pids ]] || break
      kill -KILL $pids
      sleep 0.1
    done
    [[ -z $job ]] || wait "$job"
  } 2>/dev/null
  ip netns delete "$ns_a" 2>/dev/null  # takes its end of the veth pair, and the pair, along
  ip netns delete "$ns_b" 2>/dev/null
  [[ -z $tmp ]] || rm -rf -- "$tmp"
  if ip netns list 2>/dev/null | grep -w -e "$ns_a" -e "$ns_b" >/dev/null; then
    echo "two_hosts.sh: could not remove namespace $ns_a or $ns_b: ip netns delete them" >&2
    (( status != 0 )) || status=70
  fi
  exit "$status"
}
stop() {
  echo "two_hosts.sh: $1: stopping the job and removing the hosts" >&2 || true  # no terminal after SIGHUP
  exit "$2"
}
trap cleanup EXIT
trap 'stop SIGHUP 129' HUP
trap 'stop SIGINT 130' INT
trap 'stop SIGTERM 143' TERM

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tp_mlp_two_hosts.$$.XXXXXX")
for ns in "$ns_a" "$ns_b"; do
  if ! made=$(ip netns add "$ns" 2>&1); then
    (( EUID == 0 )) || cannot_run "not root (ip netns add: $(one_line "$made"))"
    cannot_run "cannot create a network namespace, which needs CAP_SYS_ADMIN and CAP_NET_ADMIN (ip netns add: $(one_line "$made"))"
  fi
done
entered=$(ip netns exec "$ns_a" true 2>&1) || cannot_run "cannot enter a network namespace (ip netns exec: $(one_line "$entered"))"
# Made inside A with its peer in B, the pair never appears among this machine's interfaces.
paired=$(ip -n "$ns_a" link add "$veth" type veth peer name "$veth" netns "$ns_b" 2>&1) \
  || cannot_run "cannot create a veth pair, which needs CAP_NET_ADMIN (ip link add: $(one_line "$paired"))"
declare -A address_of=(["$ns_a"]=$HOST_A ["$ns_b"]=$HOST_B)
for ns in "$ns_a" "$ns_b"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" address add "${address_of[$ns]}/$PREFIX_LENGTH" dev "$veth"
  ip -n "$ns" link set "$veth" up
  if [[ -n $gbit ]]; then
    shaped=$(tc -n "$ns" qdisc add dev "$veth" root tbf rate "${rate}bit" burst "${burst}b" limit "${limit}b" 2>&1) \
      || cannot_run "cannot shape the link with tbf (tc qdisc add: $(one_line "$shaped"))"
  fi
done

printf '%s slots=1\n' "$HOST_A" "$HOST_B" >"$tmp/hosts"
# Open MPI's remote shell, called as `agent HOST ORTED_COMMAND...`: logging in to a host is
# entering its namespace. Like ssh, it hands the command line to a shell.
cat >"$tmp/agent" <<EOF
#!/bin/sh
case \$1 in
  $HOST_A) ns=$ns_a ;;
  $HOST_B) ns=$ns_b ;;
  *) echo "\$0: unknown host \$1" >&2; exit 1 ;;
esac
shift
exec ip netns exec "\$ns" /bin/sh -c "\$*"
EOF
chmod +x "$tmp/agent"

link="unshaped"
[[ -z $gbit ]] || link="shaped to $gbit Gbit/s each way (tbf burst $burst B, limit $limit B)"
echo "two_hosts.sh: rank 0 in $ns_a ($HOST_A), rank 1 in $ns_b ($HOST_B), veth $veth $link" >&2

# In the background, so that a signal is handled at once rather than when the job ends;
# timeout puts the job in a process group of its own, which cleanup kills as one.
TMPDIR=$tmp timeout --kill-after=5 "$timeout_seconds" \
  ip netns exec "$ns_a" "$resolved" "${mpiexec_flags[@]}" -np 2 --hostfile "$tmp/hosts" \
  --map-by node --bind-to none --mca plm_rsh_agent "$tmp/agent" \
  --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include "$veth" --mca oob_tcp_if_include "$veth" \
  "$binary" "${program_flags[@]}" &
job=$!
status=0
wait "$job" || status=$?
job=
(( status != 124 )) || echo "two_hosts.sh: the job ran past --timeout $timeout_seconds s and was stopped" >&2
exit "$status"
