// The admin-only "Models" panel: model versions, the current one, a switch button per version,
// and fine-tuning on the team's corrections with live progress (Socket.IO "training" events).
// Shown only to admins; the API refuses everyone else anyway (403).

import { el, toast } from "./dom.js";

const API = "/api/v1";

const WORDS = {
  en: {
    title: "Models",
    current: "Current version: {v}",
    use: "Use",
    inUse: "in use",
    packaged: "packaged",
    parent: "from {p}",
    train: "Fine-tune on corrections",
    switched: "Workers switch to {v} within seconds.",
    switchFailed: "Switch failed: {error}",
    trainFailed: "Could not start: {error}",
    "state.queued": "Queued",
    "state.exporting": "Collecting corrections…",
    "state.training": "Training…",
    "state.registering": "Exporting and checking the new version…",
    "state.done": "Done: version {v} registered (not switched to).",
    "state.failed": "Failed: {error}",
    step: "epoch {epoch}, step {step}/{steps}, loss {loss}",
    loadFailed: "Loading failed: {error}",
  },
  zh: {
    title: "模型",
    current: "当前版本：{v}",
    use: "使用",
    inUse: "使用中",
    packaged: "内置",
    parent: "基于 {p}",
    train: "用更正数据微调",
    switched: "工作进程将在几秒内切换到 {v}。",
    switchFailed: "切换失败：{error}",
    trainFailed: "无法开始：{error}",
    "state.queued": "排队中",
    "state.exporting": "正在收集更正数据…",
    "state.training": "正在训练…",
    "state.registering": "正在导出并检查新版本…",
    "state.done": "完成：已登记版本 {v}（未自动切换）。",
    "state.failed": "失败：{error}",
    step: "第 {epoch} 轮，第 {step}/{steps} 步，损失 {loss}",
    loadFailed: "加载失败：{error}",
  },
};

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

  t(key, vars = {}) {
    const words = WORDS[this.i18n.lang] || WORDS.en;
    const text = words[key] ?? WORDS.en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_m, name) => (name in vars ? String(vars[name]) : `{${name}}`));
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
      this.current.textContent = this.t("loadFailed", { error: err.message });
      return;
    }
    this.render();
  }

  render() {
    document.getElementById("models-title").textContent = this.t("title");
    this.startButton.textContent = this.t("train");
    this.renderJob();
    if (!this.data) return;
    this.current.textContent = this.t("current", { v: this.data.current });
    this.current.dataset.version = this.data.current;
    this.list.replaceChildren();
    for (const version of [...this.data.versions].reverse()) {
      const inUse = version.version === this.data.current;
      const item = el("li", { "data-testid": "model-version", "data-name": version.version,
        class: inUse ? "model current" : "model" });
      item.append(el("strong", {}, version.version));
      const facts = [version.builtin ? this.t("packaged") : version.change];
      if (version.parent) facts.push(this.t("parent", { p: version.parent }));
      if (version.note) facts.push(version.note);
      item.append(el("span", { class: "muted" }, ` ${facts.join(" · ")} `));
      if (inUse) {
        item.append(el("span", { class: "badge", "data-testid": "model-in-use" }, this.t("inUse")));
      } else {
        item.append(el("button", { type: "button", "data-version": version.version, "data-testid": "model-use" },
          this.t("use")));
      }
      this.list.append(item);
    }
  }

  async use(name) {
    try {
      await this.session.json(`${API}/models/current`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ version: name }),
      });
      toast(this.t("switched", { v: name }));
    } catch (err) {
      toast(this.t("switchFailed", { error: err.message }));
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
      this.status.textContent = this.t("trainFailed", { error: err.message });
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
    let text = this.t(`state.${job.state}`, { v: job.version, error: job.error || "" });
    const p = job.progress;
    if (job.state === "training" && p && p.steps) {
      this.progress.hidden = false;
      this.progress.max = p.steps;
      this.progress.value = p.step;
      const loss = typeof p.loss === "number" ? p.loss.toFixed(4) : "–";
      text = `${text} ${this.t("step", { epoch: p.epoch, step: p.step, steps: p.steps, loss })}`;
    } else {
      this.progress.hidden = !running;
      if (running) this.progress.removeAttribute("value");
    }
    this.status.textContent = text;
  }
}
