// The signed-in session: tokens in sessionStorage (per tab, gone when the tab closes), an
// authorised fetch that refreshes once on 401, and a refresh shortly before the access token
// expires. Events: "tokens" (new access token), "ended" (signed out or refresh refused).

const STORAGE_KEY = "teamocr.session";
const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
  }
}

/** The JSON body of `response`, or {} when it has none (or is not JSON). */
export async function readJson(response) {
  try {
    return await response.json();
  } catch (_err) {
    return {};
  }
}

export class Session extends EventTarget {
  constructor() {
    super();
    this.data = null;
    this.timer = null;
    this.refreshing = null;
    try {
      this.data = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    } catch (_err) {
      this.data = null;
    }
  }

  get active() {
    return Boolean(this.data && this.data.access_token && this.data.refresh_token);
  }

  get accessToken() {
    return this.data ? this.data.access_token : null;
  }

  get username() {
    return this.data ? this.data.username : "";
  }

  async login(username, password) {
    const response = await fetch(`${API}/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    const body = await readJson(response);
    if (!response.ok) throw new ApiError(response.status, body.error);
    this.store(body, username);
  }

  store(tokens, username = this.username) {
    this.data = {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      expires_at: Date.now() + Number(tokens.expires_in || 900) * 1000,
      username,
    };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(this.data));
    this.schedule();
    this.dispatchEvent(new Event("tokens"));
  }

  /** Refresh when 80% of the access token's remaining life has passed. */
  schedule() {
    clearTimeout(this.timer);
    if (!this.active) return;
    const left = this.data.expires_at - Date.now();
    this.timer = setTimeout(() => this.refresh().catch(() => {}), Math.max(1000, left * 0.8));
  }

  /** Trade the refresh token for a new pair; one refresh at a time (refresh tokens are single-use). */
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this._refresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async _refresh() {
    if (!this.active) throw new ApiError(401, "not signed in");
    const response = await fetch(`${API}/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: this.data.refresh_token }),
    });
    const body = await readJson(response);
    if (!response.ok) {
      if (response.status === 401) this.end(true);
      throw new ApiError(response.status, body.error);
    }
    this.store(body);
  }

  /** fetch() with the access token; on 401 refresh once and try again. */
  async fetch(path, options = {}, retried = false) {
    const headers = new Headers(options.headers || {});
    if (this.accessToken) headers.set("Authorization", `Bearer ${this.accessToken}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401 && !retried && this.active) {
      await this.refresh();
      return this.fetch(path, options, true);
    }
    return response;
  }

  /** GET/POST JSON; throws ApiError with the server's message when not ok. */
  async json(path, options = {}) {
    const response = await this.fetch(path, options);
    const body = await readJson(response);
    if (!response.ok) throw new ApiError(response.status, body.error);
    return body;
  }

  async me() {
    return this.json(`${API}/auth/me`);
  }

  async logout() {
    if (this.active) {
      try {
        await fetch(`${API}/auth/logout`, {
          method: "POST",
          headers: { Authorization: `Bearer ${this.accessToken}`, "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: this.data.refresh_token }),
        });
      } catch (_err) {
        // offline: the tokens expire on their own
      }
    }
    this.end(false);
  }

  end(expired) {
    clearTimeout(this.timer);
    this.data = null;
    sessionStorage.removeItem(STORAGE_KEY);
    this.dispatchEvent(new CustomEvent("ended", { detail: { expired } }));
  }
}
