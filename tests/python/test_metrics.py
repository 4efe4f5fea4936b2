"""`/metrics` from the real binary parses with the Prometheus client library's own parser and
counts what the SDK did."""

import urllib.request

import openai
from prometheus_client.parser import text_string_to_metric_families


def test_metrics_parse_and_count(env):
    fake, fg, _keys = env
    client = openai.OpenAI(base_url=fg.url + "/v1", api_key=fg.token, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    admin = (fg.data / "admin-token").read_text().strip()
    req = urllib.request.Request(fg.url + "/metrics", headers={"authorization": "Bearer " + admin})
    text = urllib.request.urlopen(req).read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    ok = [s for s in families["fluxgate_requests"].samples if s.name == "fluxgate_requests_total" and s.labels["route"] == "gpt-4o" and s.labels["status"] == "200"]
    assert sum(s.value for s in ok) == 3
    assert families["fluxgate_request_duration_seconds"].type == "histogram"
    states = {(s.labels["key"], s.labels["state"]) for s in families["fluxgate_key_state"].samples}
    # `dead` is not a valid key at the fake: the first request found that out.
    assert ("dead", "dead") in states and ("good", "healthy") in states, states
