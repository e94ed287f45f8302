#!/usr/bin/env bash
# A newcomer's first minutes, timed: clone, `make run`, first answered request.
#
#   bash bench/fresh_clone.sh [REPO] [TARGET]
#
# Clones REPO (default: this checkout's committed HEAD) into a temporary
# directory, runs `make TARGET` there (default `run`) on a free loopback port,
# and reports the seconds from `make` to the first answered /healthz and to
# the first answered `openstack network list` through the catalog, and the
# size of the venv.  With TARGET=install it times the install alone (wall
# and CPU seconds: CPU moves less with the neighbours' load).
# Results: bench/RESULTS-operator.md.  Uses pip's cache as it finds it.
set -euo pipefail
repo=${1:-$(git rev-parse --show-toplevel)}
target=${2:-run}
work=$(mktemp -d /tmp/segmentd-fresh-XXXXXX)
git clone -q "$repo" "$work/segmentd"
cd "$work/segmentd"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
now() { date +%s.%N; }
since() { python3 -c "print(f'{$(now) - $1:.1f}')"; }

start=$(now)
if [ "$target" = install ]; then
    # What `make run` installs (before the client extra existed: everything).
    make -n install-run >/dev/null 2>&1 && what=install-run || what=install
    TIMEFORMAT="make $what: %R s wall, %U s user + %S s sys CPU"
    time make "$what" >make.log 2>&1
    echo "venv: $(du -sm .venv | cut -f1) MB, $(ls .venv/lib/python3*/site-packages | wc -l) entries in site-packages"
    rm -rf "$work"
    exit 0
fi
setsid make "$target" PORT="$port" >make.log 2>&1 &
make_pid=$!
trap 'kill -- -$make_pid 2>/dev/null || true; wait $make_pid 2>/dev/null || true; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do
    kill -0 "$make_pid" 2>/dev/null || { cat make.log; exit 1; }
    sleep 0.2
done
echo "make $target -> first answered request (/healthz): $(since "$start") s"
password=$(sed -n 's/^password: //p' make.log)
cat >clouds.yaml <<EOF
clouds:
  fresh:
    auth:
      auth_url: http://127.0.0.1:$port/identity/v3
      username: admin
      password: "$password"
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
EOF
OS_CLIENT_CONFIG_FILE=$PWD/clouds.yaml .venv/bin/openstack --os-cloud fresh network list >/dev/null
echo "make $target -> first openstack network list answered: $(since "$start") s"
echo "venv: $(du -sm .venv | cut -f1) MB"
