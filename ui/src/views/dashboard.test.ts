import { describe, expect, it } from "vitest";
import { sharedAway } from "./dashboard";
import { state } from "../shell";

type Conf = NonNullable<typeof state.conf>;
const shared = (s: Partial<Conf["shared"]>): Conf =>
  ({
    shared: { redis: null, up: null, postgres: null, postgres_up: null, postgres_pending: null, ...s },
  }) as Conf;

describe("sharedAway", () => {
  it("says nothing on a single machine or when every engine answers", () => {
    expect(sharedAway(null)).toBeNull();
    expect(sharedAway(shared({}))).toBeNull();
    expect(
      sharedAway(shared({ redis: "redis://r", up: true, postgres: "postgres://p", postgres_up: true })),
    ).toBeNull();
  });
  it("names each engine that does not answer and what the replica does meanwhile", () => {
    const both = sharedAway(
      shared({
        redis: "redis://r",
        up: false,
        postgres: "postgres://p",
        postgres_up: false,
        postgres_pending: 12,
      }),
    );
    expect(both).toContain("Redis does not answer");
    expect(both).toContain("12 request records wait in memory");
    expect(sharedAway(shared({ postgres: "postgres://p", postgres_up: false }))).not.toContain("Redis");
  });
});
