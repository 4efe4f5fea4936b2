// Server-Sent Events over fetch: EventSource cannot send the session header, so the console
// reads /admin/api/events as a stream and splits it into events itself.

export interface SseEvent {
  event: string;
  data: string;
}

/** Complete events in `buffer` and the unfinished rest (fed again with the next chunk). */
export function splitEvents(buffer: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  const text = buffer.replace(/\r\n?/g, "\n");
  const parts = text.split("\n\n");
  const rest = parts.pop() ?? "";
  for (const part of parts) {
    let event = "message";
    const data: string[] = [];
    for (const line of part.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) events.push({ event, data: data.join("\n") });
  }
  return { events, rest };
}

/**
 * Streams `url` with `headers`, calling `onEvent` per event, until the stream ends or fails;
 * resolves with the HTTP status (0 when the server could not be reached).
 */
export async function stream(
  url: string,
  headers: Record<string, string>,
  onEvent: (e: SseEvent) => void,
): Promise<number> {
  let resp: Response;
  try {
    resp = await fetch(url, {
      headers: { accept: "text/event-stream", ...headers },
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    return 0;
  }
  if (!resp.ok || !resp.body) return resp.status;
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const { events, rest } = splitEvents(buffer);
      buffer = rest;
      for (const e of events) onEvent(e);
    }
  } catch {
    /* the connection dropped: the caller reconnects */
  }
  return resp.status;
}
