"""`make bench`: the dashboard's figures beside the stack's own limits, measured in one run on one stack.

Starts the local stack (tools/stack.py) on free ports with a database of its own, plus a bare Celery
worker for the baselines (tools/bench_app.py), and prints one table: what, our figure, the baseline, the
ratio, the target, met or not. Every figure is a ratio against a baseline taken in the same run, because
absolute times on a shared machine are noise. Latencies and request rates come from wrk; the rest from this
process. The table goes to the terminal and, as JSON, to var/bench/<timestamp>.json.

Run as `python -m tools.bench` (__main__.py); the measurements are in page_speed.py (the pages the web serves) and
queueing.py (the work sent to the workers), browser.py (the live page in Chromium, and Lighthouse from
package.json's lock; trace.py reads its Chromium trace), the figures and the table in figures.py.
"""
