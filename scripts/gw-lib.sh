# Shell helpers for scripts that drive godwit and the test guest (sourced, not run):
# scripts/make-fixtures.sh, tests/compat/old_release.sh.

# gw_api SOCKET JSON: one control API request; its reply line on stdout.
gw_api() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
print(s.makefile().readline().strip())' "$1" "$2"
}

# gw_hbs CONSOLE: the number of heartbeat lines so far.
gw_hbs() {
	local n
	n=$(grep -c '^HB ' "$1" 2>/dev/null || true)
	echo "${n:-0}"
}

# gw_wait_hb CONSOLE N: until CONSOLE holds N heartbeats (60 s); 1 if it never does.
gw_wait_hb() {
	for _ in $(seq 600); do
		[ "$(gw_hbs "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "no heartbeat $2 in $1: $(tail -3 "$1" 2>/dev/null)" >&2
	return 1
}

# gw_last_hb CONSOLE: the newest whole heartbeat line (the guest may be printing one).
gw_last_hb() {
	local c
	c=$(cat "$1"; echo .) # one read; the dot keeps a final newline
	c=${c%.}
	[ "${c: -1}" = $'\n' ] || c=${c%$'\n'*} # drop an unfinished last line
	printf '%s\n' "$c" | grep -E '^HB .* e=[0-9]+$' | tail -1
}

# gw_json JSON KEY: a member of a flat JSON object.
gw_json() {
	python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}
