#!/usr/bin/env bash
# Stops the real node that node-up.sh started: CoreDNS, kube-proxy and the
# kubelet, then every container and sandbox in containerd, then containerd.
# What they leave on the host (chains, the bridge, mounts, directories,
# cgroups, sysctls) is put back by hoststate restore, run by down.sh from
# the record up.sh took. Safe to run when the node is not up.
set -uo pipefail
cd "$(dirname "$0")"
. ./node.env
work=$NODE_WORK

# stop NAME: TERM, then KILL after 10 s, the process node-up.sh started.
stop() {
  local pidfile=$work/$1.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
}
stop coredns
stop kube-proxy
stop kubelet

# Every task of the kubelet's namespace killed and deleted, its container
# removed: the sandboxes' network namespaces go with their last process.
if [ -S "$CONTAINERD_SOCK" ]; then
  c=(ctr --address "$CONTAINERD_SOCK" -n k8s.io)
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do
    "${c[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1
  done
  for _ in $(seq 50); do
    running=$("${c[@]}" tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"' | wc -l)
    [ "$running" -eq 0 ] && break
    sleep 0.2
  done
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do
    "${c[@]}" tasks delete -f "$id" >/dev/null 2>&1
  done
  for id in $("${c[@]}" containers ls -q 2>/dev/null); do
    "${c[@]}" containers delete "$id" >/dev/null 2>&1
  done
fi
stop containerd
# Shims of this containerd outlive it when their task was not deleted.
pkill -KILL -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null
exit 0
