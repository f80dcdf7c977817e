# The Python client printed in spectrax-api.md, unchanged; then its "Usage" lines, pointed at
# the vigild under test (the only change: the base URL, given on the command line), with the
# results printed as JSON for the Rust test to check.
import json
import sys

import requests
import json
class SpectraXClient:
    def __init__(self, base_url="http://localhost:8080"):
        self.base_url = base_url
    def get_status(self):
        """Get system status"""
        response = requests.get(f"{self.base_url}/status")
        return response.json()
    def get_recordings(self, limit=100, offset=0, object_type=None, stream_id=None,
                       start_date=None, end_date=None, min_confidence=None,
                       sort_by="timestamp", sort_order="desc"):
        """List recordings with optional filters"""
        params = {"limit": limit, "offset": offset, "sort_by": sort_by, "sort_order": sort_order}
        if object_type:
            params["object_type"] = object_type
        if stream_id:
            params["stream_id"] = stream_id
        if start_date:
            params["start_date"] = start_date
        if end_date:
            params["end_date"] = end_date
        if min_confidence is not None:
            params["min_confidence"] = min_confidence
        response = requests.get(f"{self.base_url}/api/recordings", params=params)
        return response.json()
    def get_recording(self, recording_id):
        """Get specific recording details"""
        response = requests.get(f"{self.base_url}/api/recordings/{recording_id}")
        return response.json()
    def download_recording(self, file_url, output_path):
        """Download recording file using file_url from recording metadata"""
        response = requests.get(f"{self.base_url}{file_url}", stream=True)
        with open(output_path, 'wb') as f:
            for chunk in response.iter_content(chunk_size=8192):
                f.write(chunk)
    def get_stats(self):
        """Get recording statistics"""
        response = requests.get(f"{self.base_url}/api/recordings/stats")
        return response.json()

# Usage
client = SpectraXClient(sys.argv[1])
out_path = sys.argv[2]
# Get system status
status = client.get_status()
print(f"System uptime: {status['uptime_seconds']}s", file=sys.stderr)
# Find recordings with people
recordings = client.get_recordings(object_type="person", limit=10)
print(f"Found {recordings['total']} recordings with people", file=sys.stderr)
# All recordings (the test's camera sees no people)
everything = client.get_recordings(limit=10)
# Download a recording
if everything['recordings']:
    first = everything['recordings'][0]
    print(f"Recording: {first['stream_name']} at {first['timestamp']}", file=sys.stderr)
    print(f"Duration: {first['duration']:.2f}s, Confidence: {first['confidence']:.2f}", file=sys.stderr)
    client.download_recording(first['file_url'], out_path)
    one = client.get_recording(first['id'])
else:
    one = None
stats = client.get_stats()
print(json.dumps({
    "status": status,
    "people": recordings,
    "all": everything,
    "one": one,
    "stats": stats,
}))
