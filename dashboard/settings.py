"""Settings, read from the environment only; `.env.example` lists every variable with its default.

The defaults serve local development against the machine's MySQL and Redis. Production mode is DEBUG off (the
default), and it refuses to start on a missing or development secret.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _
from environs import Env

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()
# A .env file is optional; variables set in the real environment win over it.
env.read_env(BASE_DIR / ".env", recurse=False)

DEVELOPMENT_SECRET_KEY = "development-only-secret-key-never-use-it-in-production"  # noqa: S105 (refused below)


def secret(name: str, default: str = "") -> str:
    """NAME's value, or what the file NAME_FILE names holds (a Docker secret, under /run/secrets), so that a secret
    need not be an environment value. The start scripts read NAME_FILE too (compose/start/defaults.sh)."""
    if path := env.str(f"{name}_FILE", default=""):
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(f"{name}_FILE names {path}, which cannot be read: {error}") from error
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = secret("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
if not DEBUG and (SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "Production mode (DEBUG off) needs SECRET_KEY: at least 50 random characters, e.g. from "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`. Set DEBUG=true for development."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# HAProxy sets X-Forwarded-For and -Proto on every request (overwriting what a client sent); they are believed
# from these networks only (dashboard.web.middleware drops them from anyone else). None by default: the local stack
# and Compose name HAProxy's address.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# Set, forwarded headers are believed only from a trusted proxy that also sends this (HAProxy adds it): an address
# alone is any local user's to bind.
PROXY_SECRET = secret("PROXY_SECRET")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Served over HTTPS (TLS ends at HAProxy or in front of it): secure cookies, HSTS, redirect to https. On by
# default in production mode; HTTPS=false only for plain HTTP on a trusted network, as `make run` on loopback.
HTTPS = env.bool("HTTPS", default=not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS
# HAProxy's health checks speak plain HTTP to the replicas.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_HTTPONLY = LANGUAGE_COOKIE_HTTPONLY = True

# Set by compose/start/web: while this file exists the replica is stopping, and /healthz says so.
WEB_DRAIN_FILE = env.str("WEB_DRAIN_FILE", default="")

# Accounts (dashboard/web/access.py): off, the dashboard is open to whoever reaches it; on, every page, the API and the
# exports need a signed-in person, who sees their own computations (staff see all).
DASHBOARD_LOGIN_REQUIRED = env.bool("DASHBOARD_LOGIN_REQUIRED", default=False)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = LOGOUT_REDIRECT_URL = "dashboard"

INSTALLED_APPS = [
    "dashboard.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",  # its Swagger UI, served from our static files for /api/v1/docs
    "dashboard",
    "tasks",
]

MIDDLEWARE = [
    "dashboard.web.middleware.NotModifiedMiddleware",  # first: it sees every header the others add
    # Before any middleware that reads or writes the body, so that it compresses what they made.
    "dashboard.web.compression.GZipWhatHAProxySkipsMiddleware",
    # /api/v1/'s errors as problem+json, whichever layer answered them (dashboard/api/problems.py).
    "dashboard.api.problems.ProblemMiddleware",
    "dashboard.web.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "dashboard.web.access.LoginRequiredMiddleware",
    "dashboard.web.middleware.ServerUnavailableMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.web.theme.context",
                "dashboard.web.access.context",
            ],
        },
    },
    # The partials every poller gets after each change, named *.jinja (dashboard/templates/README.md says which).
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"environment": "dashboard.web.jinja.environment"},
    },
]

DATABASES = {
    "default": env.dj_db_url(
        "DATABASE_URL",
        default="mysql://root@127.0.0.1:3306/dashboard",
        conn_max_age=env.int("DATABASE_CONN_MAX_AGE", default=60),
        conn_health_checks=env.bool("DATABASE_CONN_HEALTH_CHECKS", default=True),
    )
}
DATABASES["default"]["OPTIONS"] = {
    "charset": "utf8mb4",
    # MySQL and MariaDB answer a filtered page (status and operation) by intersecting two indexes and sorting
    # the result: 430 ms at a million rows, against 2 ms from the (status, operation) index alone.
    "init_command": "SET SESSION optimizer_switch='index_merge_intersection=off'",
}
DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
# The password of DATABASE_URL's user, kept out of the URL (DATABASE_PASSWORD_FILE: a Docker secret); set, it wins.
if database_password := secret("DATABASE_PASSWORD"):
    DATABASES["default"]["PASSWORD"] = database_password
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The broker and the cache live in separate Redis databases, so flushing the cache can never drop queued work.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHE_URL = env.str("CACHE_URL", default="redis://127.0.0.1:6379/1")
CACHES = {
    "default": {
        "BACKEND": "dashboard.web.cache.RedisCache",  # one client per pool (dashboard/web/cache.py says why)
        "LOCATION": CACHE_URL,
        # Short timeouts: with Redis down a page must answer (without its cache), not hang.
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our date formats per language (dashboard/formats/<language>/formats.py), over Django's.
FORMAT_MODULE_PATH = ["dashboard.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Collected by the migrate step; WhiteNoise serves hashed names with far-future cache headers.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# No inline script and no eval anywhere: htmx is served from our own static files and configured by a <meta> tag.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
# The JSON API's CSRF failures answer in JSON.
CSRF_FAILURE_VIEW = "dashboard.web.errors.csrf_failure"
# A bulk action names up to 10,000 computations (tasks.services.BULK_CAP), each a field of the form.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_100
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# The admin user that the migrate step creates or updates; none while ADMIN_PASSWORD is empty.
ADMIN_USERNAME = env.str("ADMIN_USERNAME", default="admin")
ADMIN_EMAIL = env.str("ADMIN_EMAIL", default="")
ADMIN_PASSWORD = secret("ADMIN_PASSWORD")

# Computations (tasks app). A run may take its operation's time limit plus up to a minute of simulated work.
COMPUTATION_MAX_ATTEMPTS = env.int("COMPUTATION_MAX_ATTEMPTS", default=3)
COMPUTATION_HEARTBEAT_SECONDS = 2
# A running row whose heartbeat is older than this is taken to belong to a dead worker.
COMPUTATION_STALE_AFTER_SECONDS = env.int("COMPUTATION_STALE_AFTER_SECONDS", default=15)
# How often the sweep sends again the tasks of rows that would otherwise never end.
COMPUTATION_SWEEP_SECONDS = env.int("COMPUTATION_SWEEP_SECONDS", default=10)
# How long a worker keeps trying to write a row while the database is unreachable.
COMPUTATION_DATABASE_RETRY_SECONDS = env.int("COMPUTATION_DATABASE_RETRY_SECONDS", default=60)
# Ended computations older than this are deleted (tasks/retention.py); their counts and run times stay in the
# rollups for two years. 0 keeps every computation.
COMPUTATION_RETENTION_DAYS = env.int("COMPUTATION_RETENTION_DAYS", default=30)
# Schedules (tasks/scheduling.py): at most SCHEDULE_MAX per person (or client address, for schedules made without
# signing in) and SCHEDULE_MAX_TOTAL in all; none runs more often than every SCHEDULE_MIN_INTERVAL_SECONDS (its heavy
# computations: SCHEDULE_MIN_HEAVY_INTERVAL_SECONDS). A run due longer ago than SCHEDULE_MISSED_AFTER_SECONDS was
# missed, and runs once or is skipped as its schedule says.
SCHEDULE_MAX = env.int("SCHEDULE_MAX", default=100)
SCHEDULE_MAX_TOTAL = env.int("SCHEDULE_MAX_TOTAL", default=5_000)
SCHEDULE_MIN_INTERVAL_SECONDS = env.int("SCHEDULE_MIN_INTERVAL_SECONDS", default=60)
SCHEDULE_MIN_HEAVY_INTERVAL_SECONDS = env.int("SCHEDULE_MIN_HEAVY_INTERVAL_SECONDS", default=600)
SCHEDULE_MISSED_AFTER_SECONDS = env.int("SCHEDULE_MISSED_AFTER_SECONDS", default=120)
# Submissions are refused (503) while this many wait; those accepted are never dropped.
COMPUTATION_MAX_QUEUED = env.int("COMPUTATION_MAX_QUEUED", default=10_000)
# What one person (or one client address, without signing in) may have waiting at once; beyond it 429.
COMPUTATION_MAX_QUEUED_PER_CLIENT = env.int("COMPUTATION_MAX_QUEUED_PER_CLIENT", default=1_000)
# Computations one person (or client address) may queue, as "count/period" (s, m, h, d, with a multiple: 10m): a
# batch counts its size, a retry the computations it queues again. Beyond it 429 with Retry-After.
SUBMISSION_RATE_LIMIT = env.str("SUBMISSION_RATE_LIMIT", default="1000/10m")
# Attempts to sign in per client address (the dashboard's login; the admin's has its own page), and API tokens
# refused (a wrong, expired or revoked one).
LOGIN_RATE_LIMIT = env.str("LOGIN_RATE_LIMIT", default="10/m")

# The API (dashboard/api/). An API token's own submission limit, in the form of SUBMISSION_RATE_LIMIT: a program is not
# a person typing. The queue's cap and a person's share of it hold for tokens as for everyone.
API_TOKEN_RATE_LIMIT = env.str("API_TOKEN_RATE_LIMIT", default="600/m")
# Whether /api/v1/ takes changes from a caller with neither a token nor a signed-in session (accounts off only).
API_ANONYMOUS_WRITES = env.bool("API_ANONYMOUS_WRITES", default=False)
# A request's body under /api/v1/ (a bulk action's 10,000 ids take about 80 KB).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=256 * 1024)

# Every worker writes a heartbeat this often (tasks/presence.py); one silent for WORKER_LOST_AFTER_SECONDS is shown as
# lost, and one lost or stopped for WORKER_FORGET_AFTER_SECONDS is forgotten.
WORKER_HEARTBEAT_SECONDS = 5
WORKER_LOST_AFTER_SECONDS = env.int("WORKER_LOST_AFTER_SECONDS", default=60)
WORKER_FORGET_AFTER_SECONDS = env.int("WORKER_FORGET_AFTER_SECONDS", default=3600)

# Celery, configured from here through the CELERY_ namespace (tasks/celery.py).
CELERY_BROKER_URL = REDIS_URL
# The queues, their routing and the housekeeping's queues are declared in tasks/queues.py (tasks/celery.py tells
# Celery).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A web request that sends a task while the broker is down gives up within about a second; the row stays
# queued for the sweep.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Redelivery of an unacknowledged task waits for the visibility timeout: it must exceed the longest run (the
# hard time limit) plus the wait of a prefetched task, or a slow task would be delivered twice.
CELERY_TASK_TIME_LIMIT = 300
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * CELERY_TASK_TIME_LIMIT, "socket_connect_timeout": 2}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process that grows past 256 MB is replaced after its task.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = 256_000
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_SERIALIZER = "json"
# The outcome is written on the Computation row; Celery keeps no second copy.
CELERY_TASK_IGNORE_RESULT = True
# Flower sees every task from the moment a worker receives it. (The "sent" event would cost every submission
# a second message to the broker, for a state the dashboard shows itself.)
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
# Beat runs celery-redbeat's scheduler (tasks/beat_scheduler.py): its schedule and a lock live in the broker's Redis, so
# any number of beats may run and one sends while the others wait on the lock. The active one extends the lock at
# every tick (at most every BEAT_MAX_LOOP_INTERVAL seconds); killed, its lock expires after REDBEAT_LOCK_TIMEOUT and
# a waiting beat, which tries every BEAT_MAX_LOOP_INTERVAL seconds, takes over: within 35 s.
CELERY_REDBEAT_REDIS_URL = REDIS_URL
CELERY_REDBEAT_KEY_PREFIX = "dashboard:beat:"
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
CELERY_REDBEAT_LOCK_TIMEOUT = 30
# A short outage of Redis is waited out (as the workers do) rather than ending beat.
CELERY_REDBEAT_REDIS_OPTIONS = {"retry_period": 20, "socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_BEAT_SCHEDULE = {
    "sweep": {
        "task": "tasks.sweep",
        "schedule": COMPUTATION_SWEEP_SECONDS,
        # With no worker to take them, sweeps expire instead of piling up.
        "options": {"expires": COMPUTATION_SWEEP_SECONDS},
    },
    # The rollups of ended computations, which outlive them (tasks/rollups.py).
    "roll-up": {"task": "tasks.roll_up", "schedule": 60, "options": {"expires": 60}},
    # Retention (tasks/retention.py): minutes of deletes, sent to the heavy queue (tasks/celery.py).
    "prune": {"task": "tasks.prune", "schedule": 600, "options": {"expires": 600}},
    # People's schedules (tasks/scheduling.py), fired from MySQL: a due time is at most this late.
    "fire-schedules": {"task": "tasks.fire_schedules", "schedule": 5, "options": {"expires": 5}},
}

# Webhooks (tasks/webhooks/): URLs people register, called from the workers when their computations and batches end.
# Deliveries go only to WEBHOOK_ALLOWED_HOSTS: names exactly, ".example.com" for a domain and its subdomains, "*" for
# any; none, the default, turns webhooks off. An internal address (loopback, private, link-local, reserved) only
# inside WEBHOOK_ALLOWED_NETWORKS (e.g. 10.0.0.0/8), and never the stack's own services: the database and Redis
# servers above, and on any internal address the ports of WEBHOOK_STACK_PORTS too (the web replicas, Flower and
# HAProxy's monitoring, whose hosts these settings do not know). At most WEBHOOK_MAX_PER_PERSON per person.
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", default=[])
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
WEBHOOK_STACK_PORTS = env.list("WEBHOOK_STACK_PORTS", subcast=int, default=[8000, 8001, 8002, 5555, 8404])
WEBHOOK_MAX_PER_PERSON = env.int("WEBHOOK_MAX_PER_PERSON", default=10)
# The attempts that are due: a delivery's first goes at once, the next after 30 s, then less and less often, for a day.
CELERY_BEAT_SCHEDULE["deliver-webhooks"] = {
    "task": "tasks.deliver_due_webhooks",
    "schedule": 15,
    "options": {"expires": 15},
}
