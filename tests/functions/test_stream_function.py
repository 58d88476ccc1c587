import json
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from starlette.testclient import TestClient

from tests.functions.conftest import ALICE, BOB

BODY = {"brief": "heroic space fox", "style_id": "loose-ink-mascot", "num_images": 4, "seed": 2}


def read_events(client: TestClient, job_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()  # ends after `done`
    return parse_events(text)


def parse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if not line.startswith(":") and ": " in line
        )
        if "event" in fields:
            events.append(
                {
                    "id": int(fields["id"]),
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                }
            )
    return events


def test_events_then_done_and_resume(
    api: FlaskClient, stream: TestClient, wait_done: Callable[..., dict[str, Any]]
) -> None:
    job_id = api.post("/v1/jobs", json=BODY, headers=ALICE).get_json()["job_id"]
    events = read_events(stream, job_id, ALICE)
    sketches, done = events[:-1], events[-1]
    assert [e["event"] for e in sketches] == ["sketch"] * 4
    assert [e["id"] for e in sketches] == [1, 2, 3, 4]
    assert sorted(e["data"]["index"] for e in sketches) == [0, 1, 2, 3]
    assert all(e["data"]["status"] == "ok" and e["data"]["url"] for e in sketches)
    assert done["event"] == "done" and done["id"] == 5
    assert done["data"]["status"] == "done" and done["data"]["metadata_url"]

    resumed = read_events(stream, job_id, {**ALICE, "Last-Event-ID": "2"})
    assert [e["id"] for e in resumed] == [3, 4, 5]
    assert [e["data"]["index"] for e in resumed[:2]] == [e["data"]["index"] for e in sketches[2:]]

    finished = stream.get(f"/v1/jobs/{job_id}/events", headers={**ALICE, "Last-Event-ID": "5"})
    assert finished.status_code == 204  # nothing missed: an EventSource stops reconnecting


def test_events_need_the_owner(api: FlaskClient, stream: TestClient) -> None:
    job_id = api.post("/v1/jobs", json=BODY, headers=ALICE).get_json()["job_id"]
    assert stream.get(f"/v1/jobs/{job_id}/events", headers=BOB).status_code == 404
    assert stream.get(f"/v1/jobs/{job_id}/events").status_code == 401
    # The stream function serves only the events route.
    assert stream.post("/v1/jobs", json=BODY, headers=ALICE).status_code in {404, 405}
