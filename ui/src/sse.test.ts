import { describe, expect, it } from "vitest";
import { splitEvents } from "./sse";
import { takeFromHash } from "./session";

describe("splitEvents", () => {
  it("yields complete events and keeps the rest for the next chunk", () => {
    const a = splitEvents(
      'event: snapshot\ndata: {"keys":[]}\n\n: keep-alive\n\nevent: key_state_changed\ndata: {"a"',
    );
    expect(a.events).toEqual([{ event: "snapshot", data: '{"keys":[]}' }]);
    const b = splitEvents(a.rest + ":1}\n\n");
    expect(b.events).toEqual([{ event: "key_state_changed", data: '{"a":1}' }]);
    expect(b.rest).toBe("");
  });

  it("joins data lines, accepts CRLF and defaults the event name", () => {
    const r = splitEvents("data: one\r\ndata:two\r\n\r\n");
    expect(r.events).toEqual([{ event: "message", data: "one\ntwo" }]);
  });

  it("gives the same events however the stream is split", () => {
    const whole = 'event: a\ndata: 1\n\nevent: b\ndata: {"x":"y"}\n\n';
    for (let cut = 0; cut <= whole.length; cut++) {
      const first = splitEvents(whole.slice(0, cut));
      const second = splitEvents(first.rest + whole.slice(cut));
      expect([...first.events, ...second.events].map((e) => e.event)).toEqual(["a", "b"]);
    }
  });
});

describe("takeFromHash", () => {
  it("takes the session secret out of the login fragment", () => {
    const s = "ab".repeat(32);
    expect(takeFromHash(`#fluxgate-session=${s}`)).toEqual({ secret: s, hash: "#dashboard" });
  });
  it("leaves ordinary navigation alone and drops a malformed secret", () => {
    expect(takeFromHash("#keys")).toEqual({ secret: null, hash: "#keys" });
    expect(takeFromHash("#fluxgate-session=<script>")).toEqual({ secret: null, hash: "#dashboard" });
  });
});
