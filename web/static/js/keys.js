// The "API keys" panel: a member's keys for scripts (Authorization: Bearer <key>), made with a
// name and an optional expiry, the new key shown once, each listed with its last use and a revoke
// button. An admin's list holds every key of their team.

import { el, toast } from "./dom.js";

const API = "/api/v1/keys";

export class KeysPanel {
  constructor(session, i18n) {
    this.session = session;
    this.i18n = i18n;
    this.root = document.getElementById("keys-panel");
    this.list = document.getElementById("keys-list");
    this.name = document.getElementById("key-name");
    this.days = document.getElementById("key-days");
    this.fresh = document.getElementById("key-new");
    this.keys = [];
    document.getElementById("keys-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("[data-revoke]");
      if (button) this.revoke(button.dataset.revoke);
    });
    i18n.addEventListener("change", () => this.render());
  }

  async show() {
    this.root.hidden = false;
    await this.load();
  }

  hide() {
    this.root.hidden = true;
    this.keys = [];
    this.fresh.hidden = true;
    this.fresh.replaceChildren();
    this.list.replaceChildren();
  }

  async load() {
    try {
      this.keys = (await this.session.json(API)).items;
    } catch (err) {
      toast(this.i18n.t("loadFailed", { error: err.message }));
      return;
    }
    this.render();
  }

  async create() {
    const body = { name: this.name.value.trim() };
    if (this.days.value) body.expires_in_days = Number(this.days.value);
    try {
      const made = await this.session.json(API, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      this.fresh.replaceChildren(
        el("span", {}, `${this.i18n.t("keys.shownOnce")} `),
        el("code", { "data-testid": "key-secret" }, made.key),
      );
      this.fresh.hidden = false;
      this.name.value = "";
      await this.load();
    } catch (err) {
      toast(this.i18n.t("keys.failed", { error: err.message }));
    }
  }

  async revoke(id) {
    try {
      await this.session.json(`${API}/${encodeURIComponent(id)}`, { method: "DELETE" });
      await this.load();
    } catch (err) {
      toast(this.i18n.t("keys.failed", { error: err.message }));
    }
  }

  render() {
    const when = (stamp) => (stamp ? new Date(stamp * 1000).toLocaleString(this.i18n.lang === "zh" ? "zh-CN" : "en") : "-");
    this.list.replaceChildren(
      ...this.keys.map((key) => {
        const row = el("li", { class: "key", "data-testid": "key-item", "data-id": key.id });
        row.append(
          el("strong", {}, key.name),
          el("span", { class: "muted" }, `${key.user} · ${this.i18n.t("keys.lastUsed")} ${when(key.last_used_at)}`
            + (key.expires_at ? ` · ${this.i18n.t("keys.expires")} ${when(key.expires_at)}` : "")),
          el("button", { type: "button", class: "small", "data-revoke": key.id, "data-testid": "key-revoke" },
            this.i18n.t("keys.revoke")),
        );
        return row;
      }),
    );
    if (!this.keys.length) this.list.append(el("li", { class: "muted" }, this.i18n.t("keys.none")));
  }
}
