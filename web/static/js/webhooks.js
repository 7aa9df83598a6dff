// The admin-only "Webhooks" panel: the team's webhook URLs with their last delivery, a form to add
// one (its secret is shown once, right after), a Remove button, and each webhook's delivery log
// (state, attempts, the receiver's last answer or error), refreshed every few seconds while open.
// Shown only to admins; the API refuses everyone else anyway (403).

import { el, toast } from "./dom.js";

const API = "/api/v1/webhooks";
const REFRESH_MS = 5000;

export class WebhooksPanel {
  constructor(session, i18n) {
    this.session = session;
    this.i18n = i18n;
    this.root = document.getElementById("webhooks-panel");
    this.list = document.getElementById("webhooks-list");
    this.form = document.getElementById("webhook-form");
    this.url = document.getElementById("webhook-url");
    this.secret = document.getElementById("webhook-secret");
    this.hooks = [];
    this.logs = new Map(); // webhook id -> its deliveries, for the logs open
    this.timer = null;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.add();
    });
    document.getElementById("webhooks-refresh").addEventListener("click", () => this.load());
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const id = button.closest("[data-id]").dataset.id;
      if (button.dataset.action === "remove") this.remove(id);
      else this.toggleLog(id);
    });
    i18n.addEventListener("change", () => this.render());
  }

  /** Show the panel to admins (and load it); hide it from everyone else. */
  async show(isAdmin) {
    this.root.hidden = !isAdmin;
    if (!isAdmin) return;
    await this.load();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
    this.root.hidden = true;
    this.hooks = [];
    this.logs.clear();
    this.secret.hidden = true;
    this.secret.textContent = "";
    this.list.replaceChildren();
  }

  async load() {
    try {
      this.hooks = (await this.session.json(API)).webhooks;
      for (const id of [...this.logs.keys()]) {
        if (this.hooks.some((hook) => hook.id === id)) {
          this.logs.set(id, (await this.session.json(`${API}/${encodeURIComponent(id)}/deliveries`)).deliveries);
        } else {
          this.logs.delete(id);
        }
      }
    } catch (err) {
      this.list.replaceChildren(el("li", { class: "muted" }, this.i18n.t("loadFailed", { error: err.message })));
      return;
    }
    this.render();
  }

  render() {
    this.list.replaceChildren();
    if (!this.hooks.length) {
      this.list.append(el("li", { class: "muted", "data-testid": "webhooks-empty" }, this.i18n.t("webhooks.none")));
    }
    for (const hook of this.hooks) {
      const item = el("li", { class: "webhook", "data-testid": "webhook", "data-id": hook.id });
      item.append(el("strong", { "data-testid": "webhook-url-shown" }, hook.url));
      const last = hook.last_delivery
        ? this.i18n.t("webhooks.last", { state: this.i18n.t(`webhooks.state.${hook.last_delivery.state}`) })
        : this.i18n.t("webhooks.never");
      item.append(el("span", { class: "muted" }, ` ${hook.events.join(", ")} · ${last} `));
      item.append(el("button", { type: "button", class: "small", "data-action": "log", "data-testid": "webhook-log" },
        this.i18n.t("webhooks.log")));
      item.append(el("button", { type: "button", class: "small", "data-action": "remove",
        "data-testid": "webhook-remove" }, this.i18n.t("webhooks.remove")));
      const log = this.logs.get(hook.id);
      if (log) item.append(this.renderLog(log));
      this.list.append(item);
    }
  }

  renderLog(deliveries) {
    const list = el("ol", { class: "deliveries", "data-testid": "webhook-deliveries" });
    if (!deliveries.length) list.append(el("li", { class: "muted" }, this.i18n.t("webhooks.noDeliveries")));
    for (const d of deliveries) {
      const text = this.i18n.t("webhooks.delivery", {
        time: new Date((d.updated_at || d.created_at) * 1000).toLocaleString(),
        event: d.event,
        state: this.i18n.t(`webhooks.state.${d.state}`),
        attempts: d.attempts,
        code: d.status_code === null ? "" : ` · HTTP ${d.status_code}`,
        error: d.last_error ? ` · ${d.last_error}` : "",
      });
      list.append(el("li", { "data-testid": "webhook-delivery", "data-state": d.state, "data-event": d.event }, text));
    }
    return list;
  }

  async add() {
    const events = [...this.form.querySelectorAll("input[name=event]:checked")].map((box) => box.value);
    try {
      const hook = await this.session.json(API, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ url: this.url.value.trim(), events }),
      });
      this.secret.textContent = this.i18n.t("webhooks.secret", { id: hook.id, secret: hook.secret });
      this.secret.dataset.secret = hook.secret;
      this.secret.hidden = false;
      this.url.value = "";
      toast(this.i18n.t("webhooks.added"));
    } catch (err) {
      toast(this.i18n.t("webhooks.failed", { error: err.message }));
    }
    await this.load();
  }

  async remove(id) {
    try {
      const response = await this.session.fetch(`${API}/${encodeURIComponent(id)}`, { method: "DELETE" });
      if (!response.ok && response.status !== 404) throw new Error(`HTTP ${response.status}`);
      this.logs.delete(id);
      toast(this.i18n.t("webhooks.removed"));
    } catch (err) {
      toast(this.i18n.t("webhooks.failed", { error: err.message }));
    }
    await this.load();
  }

  async toggleLog(id) {
    if (this.logs.has(id)) {
      this.logs.delete(id);
      this.render();
      return;
    }
    this.logs.set(id, []);
    await this.load();
  }
}
