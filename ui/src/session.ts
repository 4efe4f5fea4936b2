// The console session's secret. /admin/login sets an HttpOnly cookie (which the browser also
// sends to every other port of 127.0.0.1) and hands the page a secret in the redirect's
// fragment (#fluxgate-session=…), which no server ever receives. The secret is kept in this
// origin's localStorage (no other port's page can read it) and sent with every admin API call
// as x-fluxgate-session: a stolen cookie alone opens nothing.

export const SESSION_HEADER = "x-fluxgate-session";
const KEY = "fluxgate.session";
const PREFIX = "#fluxgate-session=";

/** Splits a login fragment into the secret and the hash to show instead. */
export function takeFromHash(hash: string): { secret: string | null; hash: string } {
  if (!hash.startsWith(PREFIX)) return { secret: null, hash };
  const secret = hash.slice(PREFIX.length);
  return /^[0-9a-f]{16,128}$/.test(secret)
    ? { secret, hash: "#dashboard" }
    : { secret: null, hash: "#dashboard" };
}

/** Called once at start: moves a secret from the URL into storage and out of the address bar. */
export function adoptFromLocation(): void {
  const { secret, hash } = takeFromHash(location.hash);
  if (hash !== location.hash) {
    if (secret) localStorage.setItem(KEY, secret);
    history.replaceState(null, "", `${location.pathname}${location.search}${hash}`);
  }
}

/** The headers that carry the session (none when signed out). */
export function sessionHeaders(): Record<string, string> {
  const s = localStorage.getItem(KEY);
  return s ? { [SESSION_HEADER]: s } : {};
}

export function forget(): void {
  localStorage.removeItem(KEY);
}
