#!/usr/bin/env python3
"""The live stack's plan from config/live.yaml (scripts/live.sh; docs/operations.md).

  live_config.py CONFIG TAPE

Writes, under the stack's state folder, `ingest.yaml` (the file's top level, the `--live-config` format, with
every feed lacking a `url` pointed at the embedded feed-sim, or the vendor feeds whose keys are set) and
`prometheus.yml` (config/prometheus.yml with the stack's ports and an absolute rule-file path), and prints
bash assignments for scripts/live.sh: STATE, the store URLs, PROCESSES (start order), one array
CMD_<name> per process and READY_URLS (every process's `/ready`: serve's and each `--metrics-listen`'s).
`stack.logging` ({format: text|json, level: info|…}) becomes every tape process's `--log-format`/`--log-level`.
Keys are named, never printed: the vendors read them from the environment.
"""
import glob, os, shlex, sys
import yaml

config_path, tape = sys.argv[1], sys.argv[2]
root = os.getcwd()
document = yaml.safe_load(open(config_path)) or {}
stack = document.get("stack") or {}
unknown = set(stack) - {"state_dir", "pipeline", "trading", "alerts", "feed_sim", "vendor_feeds", "kafka", "ingest",
                        "work", "serve", "stores", "prometheus", "start_services", "ready_timeout_seconds", "logging"}
if unknown:
    sys.exit(f"{config_path}: stack: unknown keys {sorted(unknown)}")
state = os.path.abspath(stack.get("state_dir", ".tape/live"))
sim = stack.get("feed_sim") or {}
use_sim = bool(sim.get("enabled", True)) and os.environ.get("TAPE_LIVE_FEEDS", "") != "vendors"
stores = stack.get("stores") or {}
ingest = stack.get("ingest") or {}
work = stack.get("work") or {}
serve = stack.get("serve") or {}
prometheus = stack.get("prometheus") or {}
kafka = stack.get("kafka", "127.0.0.1:59092")
logging = stack.get("logging") or {}
if not isinstance(logging, dict) or set(logging) - {"format", "level"}:
    sys.exit(f"{config_path}: stack.logging: expected {{format: text|json, level: LEVEL}}")
log_format, log_level = str(logging.get("format", "text")), str(logging.get("level", "info"))
if log_format not in ("text", "json"):
    sys.exit(f"{config_path}: stack.logging.format: expected text or json, got {log_format!r}")
if log_level not in ("trace", "debug", "info", "notice", "warning", "error", "critical"):
    sys.exit(f"{config_path}: stack.logging.level: expected trace, debug, info, notice, warning, error or critical, "
             f"got {log_level!r}")
log_args = ["--log-format", log_format, "--log-level", log_level]
os.makedirs(state, exist_ok=True)   # once the config is known to be usable

# The session file: the top level, feeds pointed at the simulator (or the vendors' keyed feeds added).
session = {key: value for key, value in document.items() if key != "stack"}
feeds = [dict(feed) for feed in session.get("feeds") or []]
if use_sim:
    for feed in feeds:
        feed.setdefault("url", f"ws://127.0.0.1:{sim.get('port', 59410)}")
else:
    for vendor in stack.get("vendor_feeds") or []:
        if os.environ.get(vendor.get("key", "")):
            feeds.append({key: value for key, value in vendor.items() if key != "key"})
if not feeds:
    sys.exit(f"{config_path}: no feed (feeds:, or the feed simulator, or a vendor key in the environment)")
session["feeds"] = feeds
with open(f"{state}/ingest.yaml", "w") as out:
    out.write(f"# Written by scripts/live_config.py from {config_path}: do not edit.\n")
    yaml.safe_dump(session, out, sort_keys=False)

commands = {}
if use_sim:
    recordings = sorted(path for pattern in sim.get("recordings", []) for path in glob.glob(pattern))
    if not recordings:
        sys.exit(f"{config_path}: stack.feed_sim.recordings match no file (run `make sample`)")
    commands["feed-sim"] = [tape, "feed-sim", *recordings, "--protocol", sim.get("protocol", "binance"),
                            "--speed", str(sim.get("speed", 1)), "--port", str(sim.get("port", 59410)),
                            "--stats", f"{state}/feed-sim.stats.json", *log_args, *map(str, sim.get("options") or [])]
graph = ["--config", stack.get("pipeline", "config/pipeline.yaml")]
if stack.get("trading"):
    graph += ["--trading", stack["trading"]]
alerts = ["--alerts", stack["alerts"]] if stack.get("alerts") else []
influx = [stores["influx"]] if stores.get("influx") else []
# Each (re)start of the ingest is a session of its own, in a run folder of its own (the recording is there).
commands["ingest"] = ["/bin/sh", "-c", 'exec "$0" "$@" --out "' + state + '/runs/ingest-$(date -u +%Y%m%dT%H%M%SZ)"',
                      tape, "ingest", "--live-config", f"{state}/ingest.yaml", "--kafka", kafka,
                      "--topic", ingest.get("topic", "tape.live.ticks"),
                      "--partitions", str(ingest.get("partitions", 2)), "--quiet", *graph, *alerts,
                      "--metrics-listen", ingest.get("metrics_listen", "127.0.0.1:9101"), *log_args,
                      *[arg for url in influx for arg in ("--store", url)]]
members = int(work.get("members", 2))
work_listen = work.get("metrics_listen") or []
for index in range(members):
    name = f"work-{index + 1}"
    store_args = [arg for url in [stores["postgres"], stores.get("redis"), *influx] if url for arg in ("--store", url)]
    commands[name] = [tape, "work", "--kafka", kafka, "--topic", ingest.get("topic", "tape.live.ticks"),
                      "--group", work.get("group", "tape-live"), "--name", name, *store_args, *graph, *alerts,
                      "--session-timeout-ms", str(work.get("session_timeout_ms", 6000)),
                      "--spool", f"{state}/spool/{name}",
                      "--metrics-listen", work_listen[index] if index < len(work_listen) else "127.0.0.1:0", *log_args]
pipeline_metrics = [ingest.get("metrics_listen", "127.0.0.1:9101")] + work_listen[:members]
commands["serve"] = [tape, "serve", "--listen", serve.get("listen", "127.0.0.1:8000"), "--store", stores["postgres"],
                     *(["--redis", stores["redis"]] if stores.get("redis") else []),
                     *[arg for address in pipeline_metrics for arg in ("--pipeline-metrics", f"http://{address}/metrics")],
                     "--runs-dir", f"{state}/runs", *log_args]
prometheus_binary = "/usr/bin/prometheus"
use_prometheus = bool(prometheus.get("enabled", True)) and os.access(prometheus_binary, os.X_OK)
if use_prometheus:
    scrape = yaml.safe_load(open("config/prometheus.yml"))
    targets = {"tape-serve": [serve.get("listen", "127.0.0.1:8000")],
               "tape-live": [ingest.get("metrics_listen", "127.0.0.1:9101")], "tape-work": work_listen[:members]}
    for job in scrape["scrape_configs"]:
        job["static_configs"][0]["targets"] = targets[job["job_name"]]
    scrape["rule_files"] = [os.path.join(root, "config/prometheus-rules.yml")]
    with open(f"{state}/prometheus.yml", "w") as out:
        out.write(f"# Written by scripts/live_config.py from config/prometheus.yml and {config_path}: do not edit.\n")
        yaml.safe_dump(scrape, out, sort_keys=False)
    commands["prometheus"] = [prometheus_binary, f"--config.file={state}/prometheus.yml",
                              f"--storage.tsdb.path={state}/prometheus", "--storage.tsdb.retention.time=2d",
                              f"--web.listen-address={prometheus.get('listen', '127.0.0.1:9090')}"]


def assign(name, value):
    print(f"{name}={shlex.quote(str(value))}")


assign("STATE", state)
assign("FEEDS_FROM", "feed-sim" if use_sim else "vendors")
assign("POSTGRES_URL", stores["postgres"])
assign("REDIS_URL", stores.get("redis", ""))
assign("INFLUX_URL", stores.get("influx", ""))
assign("SERVE_LISTEN", serve.get("listen", "127.0.0.1:8000"))
assign("PROMETHEUS_LISTEN", prometheus.get("listen", "127.0.0.1:9090") if use_prometheus else "")
assign("METRICS_LISTEN", " ".join(pipeline_metrics))
# Every process's /ready, serve's first (a worker on port 0 has no known address: not waited for).
ready = [f"http://{serve.get('listen', '127.0.0.1:8000')}/ready"]
ready += [f"http://{address}/ready" for address in pipeline_metrics if not address.endswith(":0")]
assign("READY_URLS", " ".join(ready))
assign("START_SERVICES", "1" if stack.get("start_services", True) else "0")
assign("READY_TIMEOUT_SECONDS", stack.get("ready_timeout_seconds", 120))
print("PROCESSES=(" + " ".join(commands) + ")")
for name, argv in commands.items():
    print(f"CMD_{name.replace('-', '_')}=(" + " ".join(shlex.quote(arg) for arg in argv) + ")")
