"""Structured logs: with `--json-logs` every line is a JSON object, and every line logged while
serving a request (failover, stream end) carries that request's id; no key ever appears."""

import json

import anthropic


def test_json_logs_carry_the_request_id(env):
    fake, fg, keys = env
    fg.extra_args = ["--json-logs"]
    fg.restart()
    log_path = fg.workdir / "serve.log"
    start = log_path.stat().st_size
    # `dead` fails first (401), so the request fails over and logs about it.
    client = anthropic.Anthropic(base_url=fg.url, api_key=fg.token, max_retries=0)
    raw = client.messages.with_raw_response.create(model="claude-work", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    request_id = raw.headers["x-fluxgate-request-id"]
    with client.messages.stream(model="claude-work", max_tokens=16, messages=[{"role": "user", "content": "again"}]) as s:
        s.get_final_message()
    fg.stop()
    fg.extra_args = []
    fg.start()
    with open(log_path, "rb") as f:
        f.seek(start)
        lines = [l for l in f.read().decode().splitlines() if l.strip()]
    records = [json.loads(l) for l in lines if l.startswith("{")]
    assert records and len(records) == sum(1 for l in lines if l.startswith("{")), "a line that is not JSON"

    def ids(r):
        found = {sp.get("request_id") for sp in r.get("spans", [])}
        found.add(r.get("span", {}).get("request_id"))
        found.add(r.get("fields", {}).get("request_id"))
        return found - {None}

    failover = [r for r in records if "attempt failed" in r.get("fields", {}).get("message", "")]
    assert failover, lines
    assert request_id in ids(failover[0]), failover[0]
    # Every line logged inside a request names it.
    in_request = [r for r in records if r.get("spans")]
    assert in_request and all(ids(r) for r in in_request)
    text = "\n".join(lines)
    for key in keys.values():
        assert key not in text and key[:12] not in text
