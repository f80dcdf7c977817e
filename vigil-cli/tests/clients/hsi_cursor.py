# The cursor-iteration example of home-security-intelligence-api.md, unchanged but for the
# server's address (given on the command line in place of http://localhost:8000); prints the
# ids it collected, as JSON.
import json
import sys

import requests

BASE = sys.argv[1]

def get_all_events():
    events = []
    cursor = None

    while True:
        params = {"limit": 100}
        if cursor:
            params["cursor"] = cursor

        response = requests.get(f"{BASE}/api/events", params=params)
        data = response.json()

        events.extend(data["events"])

        if not data.get("has_more"):
            break

        cursor = data.get("next_cursor")

    return events

print(json.dumps([e["id"] for e in get_all_events()]))
