"""The official SDKs through Fluxgate to an upstream of a *different* dialect: the OpenAI SDK
(Chat and Responses) reaching an Anthropic key, and the Anthropic SDK reaching an OpenAI key;
text, tool calls and streams."""

import json

import re

import anthropic
import openai

WEATHER_OA = {"type": "function", "function": {"name": "weather", "description": "Weather for a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
WEATHER_ANT = {"name": "weather", "description": "Weather for a city",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ASK = 'What is the weather? [[call:weather {"city": "Oslo"}]]'


OK = re.compile(r"^ok from (limited|good)$")


def oa(fg):
    return openai.OpenAI(base_url=fg.url + "/v1", api_key=fg.token, max_retries=0)


def ant(fg):
    return anthropic.Anthropic(base_url=fg.url, api_key=fg.token, max_retries=0)


def test_openai_sdk_to_an_anthropic_key(env):
    fake, fg, _ = env
    c = oa(fg)
    r = c.chat.completions.create(model="claude-work", messages=[{"role": "user", "content": "hi"}])
    assert OK.match(r.choices[0].message.content)
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 11 and r.usage.completion_tokens == 7
    sent = json.loads(fake.log()[-1]["body"])
    assert fake.log()[-1]["path"] == "/v1/messages" and sent["model"] == "claude-upstream" and sent["max_tokens"] > 0

    chunks = list(c.chat.completions.create(model="claude-work", messages=[{"role": "user", "content": "hi"}],
                                            stream=True, stream_options={"include_usage": True}))
    assert OK.match("".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices))
    usage = [ch.usage for ch in chunks if ch.usage]
    assert len(usage) == 1 and usage[0].completion_tokens == 7


def test_openai_sdk_tools_through_anthropic(env):
    _, fg, _ = env
    c = oa(fg)
    r = c.chat.completions.create(model="claude-work", messages=[{"role": "user", "content": ASK}], tools=[WEATHER_OA])
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "weather" and json.loads(call.function.arguments) == {"city": "Oslo"}

    # Streamed: the argument fragments reassemble exactly.
    args, names = "", []
    for ch in c.chat.completions.create(model="claude-work", messages=[{"role": "user", "content": ASK}],
                                        tools=[WEATHER_OA], stream=True):
        for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            if tc.function.name:
                names.append(tc.function.name)
            args += tc.function.arguments or ""
    assert names == ["weather"] and json.loads(args) == {"city": "Oslo"}

    # The tool result goes back and the answer comes from it.
    r2 = c.chat.completions.create(model="claude-work", tools=[WEATHER_OA], messages=[
        {"role": "user", "content": ASK},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ])
    assert r2.choices[0].message.content == "tool said: 18C"


def test_openai_responses_sdk_to_an_anthropic_key(env):
    _, fg, _ = env
    c = oa(fg)
    r = c.responses.create(model="claude-work", input="hi")
    assert OK.match(r.output_text)
    assert r.id.startswith("resp_fg") and r.usage.output_tokens == 7
    with c.responses.stream(model="claude-work", input="hi") as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == final.output_text and OK.match(final.output_text)

    tool = {"type": "function", "name": "weather", "parameters": WEATHER_OA["function"]["parameters"]}
    r = c.responses.create(model="claude-work", input=ASK, tools=[tool])
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and json.loads(calls[0].arguments) == {"city": "Oslo"}
    r2 = c.responses.create(model="claude-work", tools=[tool], input=[
        {"role": "user", "content": ASK},
        {"type": "function_call", "call_id": calls[0].call_id, "name": "weather", "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "-3C"},
    ])
    assert r2.output_text == "tool said: -3C"


def test_anthropic_sdk_to_an_openai_key(env):
    fake, fg, _ = env
    c = ant(fg)
    m = c.messages.create(model="gpt-4o", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert OK.match(m.content[0].text) and m.stop_reason == "end_turn"
    assert fake.log()[-1]["path"] == "/v1/chat/completions"
    with c.messages.stream(model="gpt-4o", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == final.content[0].text and OK.match(text)
    assert final.usage.output_tokens == 7 and final.usage.input_tokens == 11

    # count_tokens on an OpenAI route is a local estimate; nothing is sent upstream.
    before = len(fake.log())
    n = c.messages.count_tokens(model="gpt-4o", messages=[{"role": "user", "content": "hello there, how are you today?"}])
    assert 5 < n.input_tokens < 40 and len(fake.log()) == before


def test_anthropic_sdk_tools_through_openai(env):
    _, fg, _ = env
    c = ant(fg)
    m = c.messages.create(model="gpt-4o", max_tokens=64, tools=[WEATHER_ANT], messages=[{"role": "user", "content": ASK}])
    assert m.stop_reason == "tool_use"
    use = [b for b in m.content if b.type == "tool_use"][0]
    assert use.name == "weather" and use.input == {"city": "Oslo"}

    with c.messages.stream(model="gpt-4o", max_tokens=64, tools=[WEATHER_ANT], messages=[{"role": "user", "content": ASK}]) as s:
        final = s.get_final_message()
    streamed = [b for b in final.content if b.type == "tool_use"][0]
    assert streamed.input == {"city": "Oslo"} and final.stop_reason == "tool_use"

    m2 = c.messages.create(model="gpt-4o", max_tokens=64, tools=[WEATHER_ANT], messages=[
        {"role": "user", "content": ASK},
        {"role": "assistant", "content": [b.model_dump() for b in m.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C"}]},
    ])
    assert m2.content[0].text == "tool said: 18C"
