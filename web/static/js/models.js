// The admin-only "Models" panel: the versions the team may see, the current one, a switch button
// per version for operators (the model every team's workers use; the API says who may switch:
// "can_switch"), and fine-tuning on the team's corrections with live progress (Socket.IO
// "training" events), its place in the line while other teams' jobs run first.
// Shown only to admins; the API refuses everyone else anyway (403).

import { el, toast } from "./dom.js";

const API = "/api/v1";

export class ModelsPanel {
  constructor(session, i18n) {
    this.session = session;
    this.i18n = i18n;
    this.root = document.getElementById("models-panel");
    this.list = document.getElementById("models-list");
    this.current = document.getElementById("models-current");
    this.startButton = document.getElementById("train-start");
    this.progress = document.getElementById("train-progress");
    this.status = document.getElementById("train-status");
    this.active = false;
    this.data = null;
    this.job = null;
    this.startButton.addEventListener("click", () => this.startTraining());
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("[data-version]");
      if (button) this.use(button.dataset.version);
    });
    i18n.addEventListener("change", () => this.render());
  }

  /** Show the panel to admins (and load it); hide it from everyone else. */
  async show(isAdmin) {
    this.active = isAdmin;
    this.root.hidden = !isAdmin;
    if (!isAdmin) return;
    await this.load();
    try {
      const body = await this.session.json(`${API}/training`);
      if (body.job) this.onJob(body.job);
    } catch (_err) {
      // no job yet, or not reachable: the panel still works
    }
  }

  hide() {
    this.active = false;
    this.root.hidden = true;
    this.data = null;
    this.job = null;
    this.list.replaceChildren();
  }

  async load() {
    try {
      this.data = await this.session.json(`${API}/models`);
    } catch (err) {
      this.current.textContent = this.i18n.t("loadFailed", { error: err.message });
      return;
    }
    this.render();
  }

  render() {
    document.getElementById("models-title").textContent = this.i18n.t("models.title");
    this.startButton.textContent = this.i18n.t("models.train");
    this.renderJob();
    if (!this.data) return;
    this.current.textContent = this.i18n.t("models.current", { v: this.data.current });
    this.current.dataset.version = this.data.current;
    const canSwitch = this.data.can_switch === true;
    this.current.dataset.canSwitch = String(canSwitch);
    if (!canSwitch) {
      this.current.append(el("span", { "data-testid": "models-operators-only" },
        ` ${this.i18n.t("models.operatorsOnly")}`));
    }
    this.list.replaceChildren();
    for (const version of [...this.data.versions].reverse()) {
      const inUse = version.version === this.data.current;
      const item = el("li", { "data-testid": "model-version", "data-name": version.version,
        class: inUse ? "model current" : "model" });
      item.append(el("strong", {}, version.version));
      const facts = [version.builtin ? this.i18n.t("models.packaged") : version.change];
      if (version.parent) facts.push(this.i18n.t("models.parent", { p: version.parent }));
      if (version.note) facts.push(version.note);
      item.append(el("span", { class: "muted" }, ` ${facts.join(" · ")} `));
      if (inUse) {
        item.append(el("span", { class: "badge", "data-testid": "model-in-use" }, this.i18n.t("models.inUse")));
      } else if (canSwitch) {
        item.append(el("button", { type: "button", "data-version": version.version, "data-testid": "model-use" },
          this.i18n.t("models.use")));
      }
      this.list.append(item);
    }
  }

  async use(name) {
    try {
      await this.session.json(`${API}/models/current`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ version: name }),
      });
      toast(this.i18n.t("models.switched", { v: name }));
    } catch (err) {
      toast(this.i18n.t("models.switchFailed", { error: err.message }));
    }
    await this.load();
  }

  async startTraining() {
    this.startButton.disabled = true;
    try {
      const job = await this.session.json(`${API}/training`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ kind: "rec", source: "corrections" }),
      });
      this.onJob(job);
    } catch (err) {
      this.status.textContent = this.i18n.t("models.trainFailed", { error: err.message });
      this.startButton.disabled = false;
    }
  }

  /** A job's state, from the API or a live "training" event. */
  onJob(job) {
    if (!this.active) return;
    if (this.job && this.job.id === job.id && job.updated_at < this.job.updated_at) return; // late event
    this.job = job;
    this.renderJob();
    if (job.state === "done") this.load(); // the new version
  }

  renderJob() {
    const job = this.job;
    if (!job) {
      this.progress.hidden = true;
      this.status.textContent = "";
      this.startButton.disabled = false;
      return;
    }
    const running = !["done", "failed"].includes(job.state);
    this.startButton.disabled = running;
    this.status.dataset.state = job.state;
    if (job.state === "waiting" && job.position) this.status.dataset.position = String(job.position);
    else delete this.status.dataset.position;
    let text = this.i18n.t(`models.state.${job.state}`, {
      v: job.version, error: job.error || "", n: job.position ?? "",
    });
    const p = job.progress;
    if (job.state === "training" && p && p.steps) {
      this.progress.hidden = false;
      this.progress.max = p.steps;
      this.progress.value = p.step;
      const loss = typeof p.loss === "number" ? p.loss.toFixed(4) : "–";
      text = `${text} ${this.i18n.t("models.step", { epoch: p.epoch, step: p.step, steps: p.steps, loss })}`;
    } else {
      this.progress.hidden = !running;
      if (running) this.progress.removeAttribute("value");
    }
    this.status.textContent = text;
  }
}
