#!/usr/bin/env python3
"""A report of what Vigil saw, from its HTTP API: the cameras and their state, the events of
the last hours counted by camera and label, the newest event's snapshot saved, and (with
--review) those events marked reviewed. Standard library only, so it runs anywhere Python 3
does: from cron, a home-automation hook or a shell.

    VIGIL_URL=http://127.0.0.1:5000 VIGIL_API_KEY=vk_... python3 events_report.py --hours 24

Credentials: VIGIL_API_KEY (an API key: `vigil keys create report`), or VIGIL_USER and
VIGIL_PASSWORD (basic auth; changes then need the account's CSRF token, which this script
fetches). Exit codes follow `vigil`'s: 3 not found, 4 unauthorized, 5 unreachable.
"""

import argparse
import base64
import collections
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class Vigil:
    def __init__(self, url, api_key=None, user=None, password=None):
        self.url = url.rstrip("/")
        self.headers = {}
        if api_key:
            self.headers["X-API-Key"] = api_key
        elif user:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.csrf = None

    def request(self, method, path, body=None, raw=False):
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if method != "GET" and "Authorization" in headers:
            if self.csrf is None:
                self.csrf = self.request("GET", "/api/account/my-token", raw=True).decode().strip()
            headers["X-CSRF-TOKEN"] = self.csrf
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("detail", detail)
            except ValueError:
                pass
            print(f"events_report: {method} {path}: HTTP {e.code}: {detail}", file=sys.stderr)
            raise SystemExit({404: 3, 401: 4, 403: 4}.get(e.code, 1)) from None
        except urllib.error.URLError as e:
            print(f"events_report: cannot reach {self.url}: {e.reason}", file=sys.stderr)
            raise SystemExit(5) from None
        return payload if raw else json.loads(payload or b"null")

    def events(self, **filters):
        """Every event matching the filters, following the cursor from page to page."""
        query = dict(filters, limit=100)
        while True:
            page = self.request("GET", "/api/events?" + urllib.parse.urlencode(query))
            yield from page["events"]
            if not page.get("has_more") or not page.get("next_cursor"):
                return
            query["cursor"] = page["next_cursor"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("VIGIL_URL", "http://127.0.0.1:5000"))
    p.add_argument("--hours", type=float, default=24.0, help="how far back (default 24)")
    p.add_argument("--snapshot-dir", default=".", help="where the newest snapshot goes")
    p.add_argument("--review", action="store_true", help="mark the events reviewed")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    a = p.parse_args()
    v = Vigil(
        a.url,
        api_key=os.environ.get("VIGIL_API_KEY"),
        user=os.environ.get("VIGIL_USER"),
        password=os.environ.get("VIGIL_PASSWORD"),
    )

    cameras = v.request("GET", "/api/cameras")["cameras"]
    since = time.time() - a.hours * 3600
    events = list(v.events(after=since))
    counts = collections.Counter((e["camera"], e["label"]) for e in events)
    report = {
        "cameras": {c["id"]: c["status"] for c in cameras},
        "since": since,
        "events": len(events),
        "by_camera_and_label": [
            {"camera": c, "label": l, "count": n} for (c, l), n in sorted(counts.items())
        ],
        "snapshot": None,
        "reviewed": 0,
    }
    newest = next((e for e in events if e.get("has_snapshot")), None)
    if newest:
        jpeg = v.request("GET", f"/api/events/{newest['id']}/snapshot.jpg?bbox=1", raw=True)
        path = os.path.join(a.snapshot_dir, f"{newest['camera']}-{newest['id']}.jpg")
        with open(path, "wb") as f:
            f.write(jpeg)
        report["snapshot"] = path
    if a.review:
        for e in events:
            if not e.get("reviewed"):
                v.request("PATCH", f"/api/events/{e['id']}", {"reviewed": True})
                report["reviewed"] += 1

    if a.json:
        print(json.dumps(report, indent=2))
        return
    print("cameras: " + ", ".join(f"{k} ({s})" for k, s in report["cameras"].items()))
    print(f"{len(events)} events in the last {a.hours:g} h")
    for row in report["by_camera_and_label"]:
        print(f"  {row['camera']:<16} {row['label']:<12} {row['count']}")
    if report["snapshot"]:
        print(f"newest snapshot: {report['snapshot']}")
    if a.review:
        print(f"marked {report['reviewed']} events reviewed")


if __name__ == "__main__":
    main()
