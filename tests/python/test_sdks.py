"""The official OpenAI and Anthropic Python SDKs pointed at Fluxgate, with a pool of one dead,
one rate-limited and one good key behind it."""

import time

import anthropic
import openai
import pytest


def oa(fg):
    return openai.OpenAI(base_url=fg.url + "/v1", api_key=fg.token, max_retries=0)


def ant(fg):
    return anthropic.Anthropic(base_url=fg.url, api_key=fg.token, max_retries=0)


def test_openai_chat_and_stream(env):
    fake, fg, _ = env
    c = oa(fg)
    r = c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content.startswith("ok from ")
    assert r.usage.prompt_tokens == 11
    chunks = list(c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text.startswith("ok from ")
    assert fake.log()[-1]["model"] == "upstream-gpt"


def test_openai_responses_models_and_embeddings(env):
    _, fg, _ = env
    c = oa(fg)
    r = c.responses.create(model="gpt-4o", input="hi")
    assert r.output_text.startswith("ok from ")
    with c.responses.stream(model="gpt-4o", input="hi") as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == final.output_text
    ids = [m.id for m in c.models.list()]
    assert "gpt-4o" in ids and "claude-work" in ids
    e = c.embeddings.create(model="text-embedding-3-small", input="x")
    assert len(e.data[0].embedding) == 3


def test_anthropic_messages_stream_and_count_tokens(env):
    fake, fg, _ = env
    c = ant(fg)
    m = c.messages.create(model="claude-work", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].text.startswith("ok from ")
    with c.messages.stream(model="claude-work", max_tokens=16, messages=[{"role": "user", "content": "hi"}],
                           extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"}) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == final.content[0].text
    assert final.usage.output_tokens == 7
    assert fake.log()[-1]["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert c.messages.count_tokens(model="claude-work", messages=[{"role": "user", "content": "hi"}]).input_tokens == 11


def test_every_request_succeeds_with_a_dead_and_a_rate_limited_key(env):
    fake, fg, _ = env
    fake.script("limited", [{"kind": "status", "status": 429, "headers": {"retry-after": "2"},
                             "body": '{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'}])
    c = ant(fg)
    for _ in range(5):
        m = c.messages.create(model="claude-work", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        assert m.content[0].text == "ok from good"
    assert fake.count("unknown") == 1  # the dead key: tried once, never again
    assert fake.count("limited") == 1
    time.sleep(2.2)  # the rate-limited key waits out its Retry-After, then serves again
    m = c.messages.create(model="claude-work", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].text == "ok from limited"
    # After a restart the dead key is still out.
    fg.restart()
    c = ant(fg)
    m = c.messages.create(model="claude-work", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].text == "ok from limited"
    assert fake.count("unknown") == 1


def test_all_keys_cooling_is_a_typed_503(env):
    fake, fg, _ = env
    for label in ("limited", "good"):
        fake.always(label, {"kind": "status", "status": 429, "headers": {"retry-after": "30"}})
    with pytest.raises(openai.APIStatusError) as e:
        oa(fg).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 503
    assert e.value.response.headers["retry-after"] in ("29", "30")
    assert e.value.body["type"] == "all_keys_cooling"
    with pytest.raises(anthropic.APIStatusError) as e:
        ant(fg).messages.create(model="claude-work", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 503
    assert e.value.body["error"]["type"] == "all_keys_cooling"


def test_a_stream_broken_after_commit_raises_in_the_sdk(env):
    fake, fg, _ = env
    # Paced events so the break arrives after the first content event committed the stream.
    fake.delay_ms(50)
    fake.script("limited", [{"kind": "reset_after", "events": 4}])
    with pytest.raises(anthropic.APIStatusError) as e:
        with ant(fg).messages.stream(model="claude-work", max_tokens=8, messages=[{"role": "user", "content": "hi"}]) as s:
            for _ in s.text_stream:
                pass
    assert "stream_interrupted" in str(e.value)
    fake.script("limited", [{"kind": "truncate_after", "events": 3}])
    with pytest.raises(openai.APIError):
        for _ in oa(fg).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True):
            pass
    # Neither request was sent upstream again after its first byte.
    assert fake.count("good") == 0
