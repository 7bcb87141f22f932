# shellcheck shell=bash
#
# pg.sh -- a throwaway PostgreSQL cluster for tests.  Source it, then:
#
#	pg_start              # initdb + start; exports PGHOST PGPORT PGUSER PGDATABASE
#	psql -c 'select 1'
#	                      # the EXIT trap stops the server and removes its files
#
# The cluster lives in a mktemp directory (data, log and unix socket) and
# listens on 127.0.0.1 on a free port, so tests can run side by side.  The
# server refuses to run as root: as root every server command goes through
# `runuser -u postgres` from the directory /, which pg_ctl can enter; as any
# other user they run directly.  fsync is off (a crash loses a test, not
# data), synchronous_commit stays on: with it off the SQL logical decoding
# functions return nothing right after a commit.
#
# Other cleanups are chained with zdm_on_exit CMD; they run in reverse order
# of registration, before the server is stopped.
#
# Variables read: ZDM_PG_TMP (parent of the temp dir, default /tmp),
# ZDM_PG_OUTPUT_PLUGINS (e.g. 'pgoutput,test_decoding,wal2json': written as
# output_plugin_libraries, only on servers that have that setting; 15.18
# refuses to start when it is present).

ZDM_PG_DIR=
ZDM_PG_AS=()
zdm_exit_cmds=()

# Register a command to run at exit (reverse order, before the server stops).
zdm_on_exit()
{
	zdm_exit_cmds+=("$1")
}

zdm_run_exit_cmds()
{
	local i rc=$?
	for ((i = ${#zdm_exit_cmds[@]} - 1; i >= 0; i--)); do
		eval "${zdm_exit_cmds[$i]}" || true
	done
	zdm_exit_cmds=()
	pg_stop
	return "$rc"
}

trap zdm_run_exit_cmds EXIT
# A signal must still run the EXIT trap: bash skips it on an untrapped kill.
trap 'exit 130' INT
trap 'exit 143' TERM

pg_bindir()
{
	local dir
	dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
	if [ -z "$dir" ] || [ ! -x "$dir/postgres" ]; then
		echo "pg.sh: no PostgreSQL server under /usr/lib/postgresql (install postgresql)" >&2
		return 1
	fi
	echo "$dir"
}

# A TCP port nobody listens on right now.  Another process may take it before
# the server binds it, so pg_start retries with a new one on failure.
pg_free_port()
{
	local port i
	for ((i = 0; i < 100; i++)); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "pg.sh: no free TCP port found" >&2
	return 1
}

# Run a server program as the user that may run it, from /.
pg_as_server()
{
	(cd / && "${ZDM_PG_AS[@]}" "$@")
}

pg_start()
{
	local bindir port try conf
	bindir=$(pg_bindir) || return 1
	PGBIN=$bindir
	export PGBIN
	ZDM_PG_DIR=$(mktemp -d "${ZDM_PG_TMP:-/tmp}/zdm-pg.XXXXXX") || return 1
	if [ "$(id -u)" = 0 ]; then
		if ! id postgres >/dev/null 2>&1; then
			echo "pg.sh: running as root but there is no postgres user" >&2
			return 1
		fi
		chown postgres: "$ZDM_PG_DIR"
		ZDM_PG_AS=(runuser -u postgres --)
	else
		ZDM_PG_AS=()
	fi
	if ! pg_as_server "$PGBIN/initdb" -D "$ZDM_PG_DIR/data" -U postgres \
		-A trust --no-sync -E UTF8 --locale=C.UTF-8 \
		>"$ZDM_PG_DIR/initdb.log" 2>&1; then
		echo "pg.sh: initdb failed:" >&2
		cat "$ZDM_PG_DIR/initdb.log" >&2
		return 1
	fi
	conf=$ZDM_PG_DIR/data/postgresql.conf
	{
		echo "# added by tests/lib/pg.sh"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$ZDM_PG_DIR'"
		echo "wal_level = logical"
		echo "max_wal_senders = 10"
		echo "max_replication_slots = 10"
		echo "fsync = off"
		echo "synchronous_commit = on"
		echo "full_page_writes = off"
		echo "max_connections = 50"
	} >>"$conf"
	if [ -n "${ZDM_PG_OUTPUT_PLUGINS:-}" ] &&
		"$PGBIN/postgres" --describe-config | cut -f1 |
		grep -x output_plugin_libraries >/dev/null; then
		echo "output_plugin_libraries = '$ZDM_PG_OUTPUT_PLUGINS'" >>"$conf"
	fi
	for ((try = 1; try <= 5; try++)); do
		port=$(pg_free_port) || return 1
		sed -i '/^port = /d' "$conf"
		echo "port = $port" >>"$conf"
		if pg_as_server "$PGBIN/pg_ctl" -D "$ZDM_PG_DIR/data" \
			-l "$ZDM_PG_DIR/log" -w -t 60 start >/dev/null 2>&1; then
			export PGHOST=$ZDM_PG_DIR PGPORT=$port PGUSER=postgres
			export PGDATABASE=postgres
			unset PGPASSWORD PGSERVICE PGOPTIONS
			return 0
		fi
		# A port taken between the probe and the bind: try another.
		if ! grep -q 'could not bind\|could not create any TCP/IP' \
			"$ZDM_PG_DIR/log" 2>/dev/null; then
			break
		fi
	done
	echo "pg.sh: the server did not start; its log:" >&2
	cat "$ZDM_PG_DIR/log" >&2 2>/dev/null
	return 1
}

# Stop the server (if running) and remove its directory.  Safe to call twice.
pg_stop()
{
	[ -n "$ZDM_PG_DIR" ] || return 0
	if [ -f "$ZDM_PG_DIR/data/postmaster.pid" ]; then
		pg_as_server "$PGBIN/pg_ctl" -D "$ZDM_PG_DIR/data" -m fast -w \
			stop >/dev/null 2>&1 ||
			echo "pg.sh: pg_ctl stop failed for $ZDM_PG_DIR" >&2
	fi
	rm -rf "$ZDM_PG_DIR"
	ZDM_PG_DIR=
}

# The server's log (for a failing test to show).
pg_log()
{
	[ -n "$ZDM_PG_DIR" ] && cat "$ZDM_PG_DIR/log" 2>/dev/null
}
