"""Budgets and spend seen through the real SDKs: a client-token budget refuses with a 402
`budget_exceeded` that the OpenAI and Anthropic SDKs raise at once (no retries, nothing sent
upstream), and `/metrics` with spend and budget gauges still parses with Prometheus' parser."""

import json
import urllib.request

import anthropic
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

EXTRA = """
[models."deepseek-chat"]
input_price = 1
output_price = 2

[[budgets]]
client = "pytest"
daily_tokens = 60
"""


def admin_get(fg, path):
    admin = (fg.data / "admin-token").read_text().strip()
    req = urllib.request.Request(fg.url + path, headers={"authorization": "Bearer " + admin})
    return urllib.request.urlopen(req).read().decode()


def test_a_spent_budget_is_a_402_the_sdks_do_not_retry(env):
    fake, fg, _keys = env
    fg.config.write_text(fg.config.read_text() + EXTRA)
    fg.restart()
    client = openai.OpenAI(base_url=fg.url + "/v1", api_key=fg.token)  # default retries on
    served = 0
    with pytest.raises(openai.APIStatusError) as refused:
        for _ in range(6):
            client.chat.completions.create(model="via-chat", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
            served += 1
    assert refused.value.status_code == 402
    assert refused.value.body["type"] == "budget_exceeded", refused.value.body
    assert 2 <= served <= 3
    sent = len(fake.log())
    claude = anthropic.Anthropic(base_url=fg.url, api_key=fg.token)
    with pytest.raises(anthropic.APIStatusError) as refused:
        claude.messages.create(model="via-chat", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 402
    assert refused.value.body["error"]["type"] == "budget_exceeded"
    assert len(fake.log()) == sent, "nothing refused reached the upstream"
    # Each refusal was one request: the SDKs did not retry a 402.
    records = json.loads(admin_get(fg, "/admin/api/requests?limit=50"))["requests"]
    assert sum(1 for r in records if r["error_code"] == "budget_exceeded") == 2
    families = {f.name: f for f in text_string_to_metric_families(admin_get(fg, "/metrics"))}
    spend = sum(s.value for s in families["fluxgate_spend_usd"].samples)
    # The fake reports 11 input and 7 output tokens; a repeat of a conversation on a key reads
    # 8 of the 11 from its prompt cache, at deepseek's cached-input discount (a tenth).
    first, repeat = 11 * 1 + 7 * 2, 3 * 1 + 8 * 0.1 + 7 * 2
    assert spend == pytest.approx((first + (served - 1) * repeat) / 1e6)
    ratio = [s for s in families["fluxgate_budget_used_ratio"].samples if s.labels["scope"] == "client:pytest"]
    assert ratio and ratio[0].labels["unit"] == "tokens" and ratio[0].value == pytest.approx(served * 18 / 60)
