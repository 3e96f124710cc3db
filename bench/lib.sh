# Sourced by the bench scripts: small helpers they share. Needs `die` (bench/env.sh).

# free_port VAR: a loopback port nothing answers on, outside the Linux
# ephemeral range (32768-60999) so that client sockets cannot collide with it.
USED_PORTS=" "
free_port() {
  local p
  for _ in $(seq 500); do
    p=$((20000 + RANDOM % 12000))
    [[ $USED_PORTS == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS+="$p "
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  die "found no free loopback port"
}

# Peak resident set size (kB) of a live process.
peak_rss_kb() {
  awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# median "1.2 0.9 1.1": the median of space-separated numbers.
median() {
  tr ' ' '\n' <<<"$1" | grep . | sort -g |
    awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2); print (NR % 2 ? v[m] : (v[m] + v[m + 1]) / 2) }'
}

# stop_pid PID NAME: SIGTERM, up to 10 s, then SIGKILL; reaps it and says
# so if it did not exit cleanly.
stop_pid() {
  local pid=$1 name=$2 status=0
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "warning: $name (pid $pid) ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || status=$?
  ((status == 0)) || echo "warning: $name exited with status $status after SIGTERM" >&2
}

# wait_echo PID AET PORT LOG: until a DICOM SCP answers C-ECHO (60 s).
wait_echo() {
  for _ in $(seq 600); do
    kill -0 "$1" 2>/dev/null || { tail -n 30 "$4" >&2; die "pid $1 exited during startup (log: $4)"; }
    /usr/bin/echoscu -to 5 -aec "$2" 127.0.0.1 "$3" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -n 30 "$4" >&2
  die "no C-ECHO answer on port $3 within 60 s (log: $4)"
}

# nginx_tls_front DIR TLS_PORT UPSTREAM_PORT WORKERS LOG: a self-signed
# certificate for 127.0.0.1 and DIR/nginx.conf, which terminates TLS 1.3 on
# 127.0.0.1:TLS_PORT in front of plain HTTP on 127.0.0.1:UPSTREAM_PORT
# (Orthanc), kept alive and unbuffered both ways: TLS against TLS when
# pushgate serves HTTPS. Start it with
#   "$NGINX" -c DIR/nginx.conf -g 'daemon off;'
nginx_tls_front() {
  local dir=$1 tls_port=$2 upstream=$3 workers=$4 log=$5 user=
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>>"$log" ||
    die "openssl could not make nginx's certificate (log: $log)"
  [[ $(id -u) -ne 0 ]] || user="user root;"
  cat >"$dir/nginx.conf" <<EOF
# written by bench/lib.sh (nginx_tls_front): TLS in front of Orthanc
$user
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream orthanc { server 127.0.0.1:$upstream; keepalive 16; }
  server {
    listen 127.0.0.1:$tls_port ssl;
    ssl_certificate $dir/cert.pem;
    ssl_certificate_key $dir/key.pem;
    ssl_protocols TLSv1.3;
    location / {
      proxy_pass http://orthanc;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      client_max_body_size 0;
      proxy_read_timeout 600s;
    }
  }
}
EOF
}
