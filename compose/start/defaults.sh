# Sourced by every start script: the project root as working directory, and the defaults of the variables the
# start scripts read themselves (Django's settings keep theirs in dashboard/settings.py). Compose and the local
# stack set the same variables; .env.example lists them all.
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

export DEBUG="${DEBUG:-false}"
# Read by Django's settings too, with the same defaults (tests/deploy checks both against .env.example).
export LOG_LEVEL="${LOG_LEVEL:-INFO}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,localhost}"
export LOGIN_RATE_LIMIT="${LOGIN_RATE_LIMIT:-10/m}"
# uWSGI, per web replica. HAProxy sends a replica at most WEB_PROCESSES × WEB_THREADS requests at once and
# queues the rest; WEB_TIMEOUT ends a request that runs longer (HAProxy waits 5 s more).
export WEB_BIND="${WEB_BIND:-0.0.0.0:8000}"
export WEB_PROCESSES="${WEB_PROCESSES:-2}"
export WEB_THREADS="${WEB_THREADS:-4}"
export WEB_TIMEOUT="${WEB_TIMEOUT:-30}"
# Recycling costs a worker's warm caches; memory (300 MB) is the first guard, this count the second.
export WEB_MAX_REQUESTS="${WEB_MAX_REQUESTS:-100000}"
export WEB_MAX_REQUESTS_DELTA=$((WEB_MAX_REQUESTS / 5))
# Seconds a stopping replica fails its health check while it still serves (HAProxy needs two failed checks, 1 s
# apart, to take it out).
export WEB_DRAIN_SECONDS="${WEB_DRAIN_SECONDS:-3}"
# Flower, under /flower behind HAProxy.
export FLOWER_BIND="${FLOWER_BIND:-0.0.0.0:5555}"
export FLOWER_MAX_TASKS="${FLOWER_MAX_TASKS:-10000}"
export FLOWER_USER="${FLOWER_USER:-flower}"
export STATS_USER="${STATS_USER:-stats}"
export WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-2}"
export WORKER_NAME="${WORKER_NAME:-worker}"
export WORKER_QUEUES="${WORKER_QUEUES:-}"
# The cache's own Redis.
export CACHE_BIND="${CACHE_BIND:-127.0.0.1:6380}"
export CACHE_MAXMEMORY="${CACHE_MAXMEMORY:-128mb}"
# HAProxy: the public and the monitoring listeners, how many replicas it looks up by DNS, requests per client
# address in 10 seconds.
export HAPROXY_BIND="${HAPROXY_BIND:-0.0.0.0:80}"
export HAPROXY_MONITOR_BIND="${HAPROXY_MONITOR_BIND:-127.0.0.1:8404}"
export WEB_REPLICAS_MAX="${WEB_REPLICAS_MAX:-10}"
export HAPROXY_RATE_LIMIT="${HAPROXY_RATE_LIMIT:-1000}"
# Connections open at once from one client address (a browser opens about six per site).
export HAPROXY_CONNECTIONS_PER_ADDRESS="${HAPROXY_CONNECTIONS_PER_ADDRESS:-32}"

die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# NAME_FILE names a file that holds NAME (a Docker secret, under /run/secrets), so that a secret need not be an
# environment value of the service. Django's settings read the same variables the same way (settings.secret).
for name in SECRET_KEY DATABASE_PASSWORD ADMIN_PASSWORD FLOWER_PASSWORD STATS_PASSWORD PROXY_SECRET; do
    file="${name}_FILE"
    [[ -n ${!file:-} ]] || continue
    [[ -r ${!file} ]] || die "$file names ${!file}, which cannot be read"
    export "$name=$(<"${!file}")"
done

# A password that guards something: required, and in production mode not a short or well-known one.
require_password() {
    local name=$1 value=${!1:-}
    [[ -n $value ]] || die "$name must be set"
    if [[ $DEBUG != true ]]; then
        ((${#value} >= 12)) || die "$name must be at least 12 characters in production mode (DEBUG=false)"
        case ${value,,} in *password* | *changeme* | admin* | flower* | secret*)
            die "$name is a well-known password: choose another" ;;
        esac
    fi
}
