#!/usr/bin/env bash
# bench/webhooks.sh: webhook delivery throughput and latency against a real
# HTTP sink on 127.0.0.1 (Debian's nginx answering 200), in one run:
#   1. the sink's own ceiling, measured with wrk (POST, keep-alive)
#   2. retailflow draining N (default 100000) queued events: deliveries/s
#   3. commit-to-2xx latency at a steady 100 events/s (pgbench --rate)
#   4. worker RSS sampled during the drain (flat memory); RF_BENCH_EVENTS=1000000 for the long run
# Prints ratios against the sink ceiling and pg_net's ~200 requests/s.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/test/lib.sh"
N=${RF_BENCH_EVENTS:-100000}
WORKERS=${RF_BENCH_WORKERS:-2}
SINK_PORT=${RF_BENCH_PORT:-18190}

rf_deps nginx-light wrk
rf_build "$ROOT"
RUN=$(mktemp -d /tmp/retailflow-bench.XXXXXX); chmod 755 "$RUN"
BIN=""
cleanup() {
  [ -f "$RUN/nginx/nginx.pid" ] && kill "$(cat "$RUN/nginx/nginx.pid")" 2>/dev/null
  [ -n "$BIN" ] && rf_cluster_stop "$BIN" "$RUN/data"
  rm -rf "$RUN"
}
trap cleanup EXIT
BIN=$(rf_temp_install "$ROOT" "$RUN/install") || exit 1
export PATH="$BIN:$PATH"

# the sink
mkdir -p "$RUN/nginx"
cat > "$RUN/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon on;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $RUN/nginx/body;
  proxy_temp_path $RUN/nginx/proxy;
  fastcgi_temp_path $RUN/nginx/fcgi;
  uwsgi_temp_path $RUN/nginx/uwsgi;
  scgi_temp_path $RUN/nginx/scgi;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:$SINK_PORT; location / { return 200 "ok"; } }
}
NGX
nginx -c "$RUN/nginx/nginx.conf" -p "$RUN/nginx" || rf_die "nginx did not start"
cat > "$RUN/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 300)
wrk.headers["Content-Type"] = "application/json"
LUA
sleep 0.3
CEIL=$(wrk -t1 -c64 -d5s -s "$RUN/post.lua" "http://127.0.0.1:$SINK_PORT/hook" | awk '/Requests\/sec/ {printf "%d", $2}')
rf_log "sink ceiling (wrk, 64 connections): $CEIL requests/s"

rf_cluster_start "$BIN" "$RUN/data" "$RUN/sock" \
  "retailflow.database = 'bench'" "retailflow.webhook_workers = $WORKERS" \
  "retailflow.webhook_batch_size = 500" "retailflow.webhook_max_in_flight = 256" \
  "retailflow.webhook_endpoint_max_in_flight = 256" "retailflow.webhook_max_host_connections = 64" \
  "retailflow.webhook_poll_interval = 200ms" "shared_buffers = 256MB" "max_wal_size = 4GB"
P() { rf_as_pg psql -X -q -At -h "$RUN/sock" -d bench "$@"; }
rf_as_pg psql -X -q -h "$RUN/sock" -d postgres -c "CREATE DATABASE bench" || rf_die "createdb"
P -c "CREATE EXTENSION retailflow" \
  -c "INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('sink', 'http://127.0.0.1:$SINK_PORT/hook', retailflow.generate_secret())" \
  -c "INSERT INTO retailflow.endpoint_health (endpoint_id, circuit_open_until) VALUES (1, 'infinity')" >/dev/null

# 2. queue N events while the circuit is held open, then release it and time
# the drain; done twice so that the second round shows whether memory stays flat
WPIDS=""
rss() { local s=0 p; for p in $WPIDS; do s=$((s + $(awk '/RssAnon/ {print $2}' /proc/$p/status 2>/dev/null || echo 0))); done; echo $s; }
drain_round() {
  P -c "UPDATE retailflow.endpoint_health SET circuit_open_until = 'infinity'" >/dev/null
  rf_log "queueing $N events"
  P -c "SELECT count(retailflow.emit('retailflow.test', 'bench', g, jsonb_build_object('n', g, 'pad', repeat('x', 200)))) FROM generate_series(1, $N) g" >/dev/null
  P -c "VACUUM ANALYZE retailflow.delivery" >/dev/null
  WPIDS=$(P -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'retailflow webhook worker'")
  RSS0=$(rss)
  T0=$(date +%s.%N)
  P -c "UPDATE retailflow.endpoint_health SET circuit_open_until = NULL" >/dev/null
  P -c "SELECT retailflow.wake_workers_at_commit()" >/dev/null
  RSSMAX=$RSS0
  while :; do
    # cheap check (the pending index), so that polling does not compete with the workers
    done_=$(P -c "SELECT NOT EXISTS (SELECT 1 FROM retailflow.delivery WHERE state = 'pending')")
    r=$(rss); [ "$r" -gt "$RSSMAX" ] && RSSMAX=$r
    [ "$done_" = t ] && break
    sleep 0.2
  done
  T1=$(date +%s.%N)
  RSS1=$(rss)
  SECS=$(echo "$T1 - $T0" | bc -l)
  RATE=$(echo "$N / $SECS" | bc -l)
  DEAD=$(P -c "SELECT count(*) FROM retailflow.delivery WHERE state <> 'delivered'")
  rf_log "drained $N events in $(printf %.2f "$SECS") s with $WORKERS workers (not delivered: $DEAD), worker RssAnon $RSS0 -> $RSS1 kB"
  P -c "DELETE FROM retailflow.delivery; DELETE FROM retailflow.outbox; VACUUM retailflow.delivery, retailflow.outbox" >/dev/null
}
drain_round
RATE1=$RATE; RSS1_END=$RSS1; RSS1_START=$RSS0
drain_round
RATE2=$RATE

# 3. steady 100 events/s for 20 s, one event per transaction
P -c "TRUNCATE retailflow.delivery" >/dev/null
echo "SELECT retailflow.emit('retailflow.test', 'steady', 1, '{\"k\": 1}');" > "$RUN/steady.sql"
chmod a+r "$RUN/steady.sql"
rf_as_pg pgbench -n -h "$RUN/sock" -d bench -f "$RUN/steady.sql" -R 100 -T 20 -c 2 >/dev/null 2>&1
sleep 1
LAT=$(P -c "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2) || ' ' ||
                   round(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2) || ' ' ||
                   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2) || ' ' || count(*)
            FROM retailflow.delivery WHERE state = 'delivered'")
read -r P50 P95 P99 NST <<<"$LAT"

echo
echo "webhook delivery benchmark ($(nproc) cores, $WORKERS workers, sink nginx on 127.0.0.1)"
printf "  sink ceiling (wrk POST, 64 conns)   %8d req/s\n" "$CEIL"
printf "  retailflow drain of %d events  %8.0f deliveries/s  (%.0f%% of sink ceiling, %.1fx pg_net's ~200/s; target 10000)\n" \
  "$N" "$RATE1" "$(echo "100 * $RATE1 / $CEIL" | bc -l)" "$(echo "$RATE1 / 200" | bc -l)"
printf "  second drain of %d events      %8.0f deliveries/s\n" "$N" "$RATE2"
printf "  commit-to-2xx at 100 events/s       p50 %s ms  p95 %s ms  p99 %s ms  (%s events; target p50 < 5 ms)\n" "$P50" "$P95" "$P99" "$NST"
printf "  worker private RSS (RssAnon, sum)  round 1: %d -> %d kB; round 2: %d -> %d kB (max %d kB)\n" \
  "$RSS1_START" "$RSS1_END" "$RSS0" "$RSS1" "$RSSMAX"
