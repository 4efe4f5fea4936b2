// The admin API, as the console uses it. The session is the cookie set by /admin/login plus
// its secret in x-fluxgate-session (session.ts); every error becomes an ApiError with the
// server's own message.

import { t } from "./i18n";
import { sessionHeaders } from "./session";

export class ApiError extends Error {
  constructor(
    public status: number,
    public type: string,
    message: string,
  ) {
    super(message);
  }
}

/** Whether the admin API last said this console is signed out (every view then shows the sign-in screen). */
export const session = { signedOut: false };

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  let resp: Response;
  try {
    resp = await fetch(`/admin/api/${path}`, {
      method,
      credentials: "same-origin",
      headers:
        body === undefined ? sessionHeaders() : { ...sessionHeaders(), "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "unreachable", t("api.unreachable"));
  }
  const text = await resp.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  session.signedOut = resp.status === 401;
  if (!resp.ok) {
    const err = (data as { error?: { type?: string; message?: string } } | null)?.error;
    throw new ApiError(resp.status, err?.type ?? "error", err?.message ?? `HTTP ${resp.status}`);
  }
  return data as T;
}

export const get = <T>(path: string) => api<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => api<T>("POST", path, body ?? {});
export const put = <T>(path: string, body: unknown) => api<T>("PUT", path, body);
export const patch = <T>(path: string, body: unknown) => api<T>("PATCH", path, body);
export const del = <T>(path: string) => api<T>("DELETE", path);

export const seg = encodeURIComponent;
