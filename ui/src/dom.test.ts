import { describe, expect, it } from "vitest";
import { h } from "./dom";

describe("h", () => {
  it("sets text as text, never as markup", () => {
    const el = h("td", {}, "<img src=x onerror=alert(1)>");
    expect(el.children.length).toBe(0);
    expect(el.textContent).toBe("<img src=x onerror=alert(1)>");
  });
  it("sets attributes and listeners, skips false and undefined", () => {
    let clicked = 0;
    const b = h(
      "button",
      { type: "button", disabled: false, title: undefined, onclick: () => clicked++ },
      "Go",
    );
    expect(b.hasAttribute("disabled")).toBe(false);
    expect(b.hasAttribute("title")).toBe(false);
    b.click();
    expect(clicked).toBe(1);
  });
});
